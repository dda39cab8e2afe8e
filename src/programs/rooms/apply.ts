import { Effect } from "effect"
import { RoomMetrics } from "../../layers/rooms/metrics.ts"
import { RoomStore } from "../../layers/RoomStore.ts"
import type { Change } from "./reconcile.ts"

/** How many writes one sync or webhook sends at once (Redis pipelines them). */
const WRITE_CONCURRENCY = 64

/**
 * Writes each change stamped with `stamp`; the events of those that applied (no later change
 * of the same room or participant was already kept) are published. How many applied.
 */
export const applyChanges = Effect.fn("rooms.apply")(function*(changes: ReadonlyArray<Change>, stamp: number) {
  const store = yield* RoomStore
  const metrics = yield* RoomMetrics
  const applied = yield* Effect.forEach(changes, (change) => {
    const write = change.kind === "room"
      ? store.putRoom(change.record, stamp)
      : change.kind === "participant"
      ? store.putParticipant(change.room, change.record, stamp)
      : store.removeParticipant(change.room, change.identity, stamp)
    return Effect.tap(
      write,
      (done) => done ? Effect.andThen(Effect.forEach(change.events, store.publish, { discard: true }), metrics.events(change.events)) : Effect.void
    )
  }, { concurrency: WRITE_CONCURRENCY })
  return applied.filter(Boolean).length
})
