import { Clock, Effect } from "effect"
import { AppConfig } from "../../layers/Config.ts"
import { RoomMetrics } from "../../layers/rooms/metrics.ts"
import { RoomStore } from "../../layers/RoomStore.ts"
import { Sessions } from "../../layers/SessionStore.ts"

/**
 * Forgets rooms LiveKit no longer has (`finished`) for longer than ROOM_STALE_GRACE_MS, unless an
 * open session of any instance still names the room. How many were removed.
 */
export const cleanupStaleRooms = Effect.fn("rooms.cleanup")(function*() {
  const store = yield* RoomStore
  const { rooms: settings } = yield* AppConfig
  const now = yield* Clock.currentTimeMillis
  const stale = (yield* store.rooms).filter((r) => r.state === "finished" && r.finishedAt !== null && now - r.finishedAt >= settings.staleGraceMs)
  if (stale.length === 0) return 0
  const inUse = yield* (yield* Sessions).openRooms
  const removable = stale.filter((r) => !inUse.has(r.name))
  yield* Effect.forEach(removable, (r) => store.dropRoom(r.name), { concurrency: 16, discard: true })
  yield* (yield* RoomMetrics).staleRemoved(removable.length)
  if (removable.length > 0) yield* Effect.logInfo(`stale cleanup: ${removable.length} finished rooms removed`)
  return removable.length
})
