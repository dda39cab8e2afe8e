import { Clock, Duration, Effect, Option, Result } from "effect"
import { LiveKit, LiveKitError } from "../../layers/LiveKit.ts"
import { AppConfig } from "../../layers/Config.ts"
import { RoomMetrics } from "../../layers/rooms/metrics.ts"
import { RoomStore } from "../../layers/RoomStore.ts"
import type { RoomName } from "../../schemas/ids.ts"
import { applyChanges } from "./apply.ts"
import { type ListedRoom, reconcile, type StoredRoom } from "./reconcile.ts"

export interface SyncOutcome {
  readonly rooms: number
  readonly participants: number
  readonly changes: number
  /** Rooms whose participants could not be listed (kept as they were). */
  readonly roomsFailed: number
}

/** What the store holds for these rooms. */
const readStored = Effect.fn("rooms.readStored")(function*(concurrency: number) {
  const store = yield* RoomStore
  const rooms = yield* store.rooms
  const entries = yield* Effect.forEach(
    rooms,
    (room) => Effect.map(store.participants(room.name), (participants): readonly [RoomName, StoredRoom] => [room.name, { room, participants }]),
    { concurrency }
  )
  return new Map(entries)
})

/**
 * One sync: LiveKit's rooms and their participants (bounded concurrency), reconciled into the
 * store and published as events. A failed room listing fails the sync and changes nothing; a room
 * whose participants cannot be listed keeps its participants and fails the sync too (after the rest applied).
 * A sync past `deadline` is cut short and counted failed (what it wrote by then stays: each write is stamped).
 */
export const syncRooms = Effect.fn("rooms.sync")(function*(deadline: Duration.Duration = Duration.infinity) {
  const livekit = yield* LiveKit
  const store = yield* RoomStore
  const metrics = yield* RoomMetrics
  const { rooms: settings } = yield* AppConfig
  const started = performance.now()
  const at = yield* Clock.currentTimeMillis
  const outcome = yield* Effect.gen(function*() {
    if (Option.isNone(livekit.api)) return yield* new LiveKitError({ operation: "sync", detail: Option.getOrElse(livekit.disabledReason, () => "off") })
    const api = livekit.api.value
    const { rooms } = yield* api.listRooms
    const listed: ReadonlyArray<ListedRoom> = yield* Effect.forEach(
      rooms,
      (room) =>
        Effect.map(Effect.result(api.listParticipants(room.name)), (r) => ({ room, participants: Result.isSuccess(r) ? r.success.participants : undefined })),
      {
        concurrency: settings.syncConcurrency
      }
    )
    const changes = reconcile(yield* readStored(settings.syncConcurrency), listed, at)
    const applied = yield* applyChanges(changes, at)
    const roomsFailed = listed.filter((l) => l.participants === undefined).length
    const result: SyncOutcome = {
      rooms: rooms.length,
      participants: listed.reduce((n, l) => n + (l.participants?.length ?? 0), 0),
      changes: applied,
      roomsFailed
    }
    if (roomsFailed > 0) {
      return yield* new LiveKitError({ operation: "ListParticipants", detail: `${roomsFailed} of ${rooms.length} rooms could not be listed` })
    }
    return result
  }).pipe(
    Effect.timeoutOrElse({
      duration: deadline,
      orElse: () => Effect.fail(new LiveKitError({ operation: "sync", detail: `took longer than ${Duration.format(deadline)}` }))
    }),
    Effect.result
  )
  const seconds = (performance.now() - started) / 1000
  const result = Result.isSuccess(outcome) ? "success" : "failure"
  yield* metrics.sync(result, seconds)
  yield* store.countSync(result, yield* Clock.currentTimeMillis).pipe(Effect.ignore)
  return yield* (Result.isSuccess(outcome) ? Effect.succeed(outcome.success) : Effect.fail(outcome.failure))
})
