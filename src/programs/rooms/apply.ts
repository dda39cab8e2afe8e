import { Effect } from "effect"
import { RoomMetrics } from "../../layers/rooms/metrics.ts"
import { RoomStore } from "../../layers/RoomStore.ts"
import type { RoomEvent } from "../../schemas/rooms.ts"
import { touchParticipant } from "../participants/touch.ts"
import type { Change } from "./reconcile.ts"

/** How many writes one sync or webhook sends at once (Redis pipelines them). */
const WRITE_CONCURRENCY = 64

/** Publishes applied events; a join also counts as hearing from the participant (presence). */
const announce = (events: ReadonlyArray<RoomEvent>) =>
  Effect.gen(function*() {
    const store = yield* RoomStore
    yield* Effect.forEach(events, store.publish, { discard: true })
    yield* (yield* RoomMetrics).events(events)
    for (const e of events) {
      if (e.type === "participant_joined" && e.identity !== undefined) yield* Effect.ignore(touchParticipant(e.identity))
    }
  })

/**
 * Writes each change stamped with `stamp`; the events of those that applied (no later change
 * of the same room or participant was already kept) are published. How many applied.
 */
export const applyChanges = Effect.fn("rooms.apply")(function*(changes: ReadonlyArray<Change>, stamp: number) {
  const store = yield* RoomStore
  const applied = yield* Effect.forEach(changes, (change) => {
    const write = change.kind === "room"
      ? store.putRoom(change.record, stamp)
      : change.kind === "participant"
      ? store.putParticipant(change.room, change.record, stamp)
      : store.removeParticipant(change.room, change.identity, stamp)
    return Effect.tap(write, (done) => done ? announce(change.events) : Effect.void)
  }, { concurrency: WRITE_CONCURRENCY })
  return applied.filter(Boolean).length
})
