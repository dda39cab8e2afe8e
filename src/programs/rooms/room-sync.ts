import { Clock, Duration, Effect, Layer, Option } from "effect"
import { AppConfig } from "../../layers/Config.ts"
import { Health } from "../../layers/Health.ts"
import { Instance } from "../../layers/Instance.ts"
import { LiveKit } from "../../layers/LiveKit.ts"
import { RoomStore } from "../../layers/RoomStore.ts"
import { cleanupStaleRooms } from "./cleanup.ts"
import { syncRooms } from "./sync.ts"

/** The `/status` section `room_sync` (the seed's names), cluster-wide from the store. */
const statusSection = (holding: () => boolean) =>
  Effect.gen(function*() {
    const store = yield* RoomStore
    const [rooms, totals, holder] = yield* Effect.all([store.rooms, store.syncTotals, store.syncLeaseHolder])
    const active = rooms.filter((r) => r.state === "active")
    const counts = yield* Effect.forEach(active, (r) => store.participantCount(r.name), { concurrency: 16 })
    const total = totals.successful + totals.failed
    return {
      state: "enabled",
      active_rooms: active.length,
      finished_rooms: rooms.length - active.length,
      total_participants: counts.reduce((a, b) => a + b, 0),
      total_syncs: total,
      successful_syncs: totals.successful,
      failed_syncs: totals.failed,
      success_rate_percent: total === 0 ? 100 : Math.round((totals.successful / total) * 1000) / 10,
      last_sync_at: Option.getOrNull(Option.map(totals.lastSyncAt, (ms) => new Date(ms).toISOString())),
      lease_holder: Option.getOrNull(holder),
      this_instance_syncs: holding()
    }
  }).pipe(Effect.orElseSucceed(() => ({ state: "unavailable" })))

/**
 * Room sync on one instance at a time: every third of ROOM_SYNC_INTERVAL_MS each instance tries to
 * take or extend the lease (held for one interval); the holder syncs once per interval (bounded by
 * three quarters of it, so the lease never lapses mid-sync) and runs stale cleanup every
 * ROOM_STALE_CLEANUP_INTERVAL_MS. A dead holder's lease expires within an interval, and another
 * instance takes it (and syncs at once) within a third more. Released at shutdown.
 */
export const RoomSyncLive = Layer.effectDiscard(Effect.gen(function*() {
  const livekit = yield* LiveKit
  const health = yield* Health
  if (Option.isNone(livekit.api)) {
    const reason = Option.getOrElse(livekit.disabledReason, () => "off")
    yield* health.section("room_sync", Effect.succeed({ state: "disabled", reason }))
    return
  }
  const { rooms: settings } = yield* AppConfig
  const { id } = yield* Instance
  const store = yield* RoomStore
  const interval = settings.syncIntervalMs
  const syncDeadline = Duration.millis(Math.round(interval * 0.75))
  let holding = false
  let lastSync = Number.NEGATIVE_INFINITY
  let lastCleanup = Number.NEGATIVE_INFINITY

  const due = (last: number, every: number, now: number) => now - last >= every - interval / 6
  const tick = Effect.gen(function*() {
    const held = yield* store.holdSyncLease(id, interval)
    if (held !== holding) yield* Effect.logInfo(held ? "room sync: this instance holds the lease" : "room sync: lease held elsewhere")
    holding = held
    if (!held) return
    const now = yield* Clock.currentTimeMillis
    if (due(lastSync, interval, now)) {
      lastSync = now
      yield* syncRooms(syncDeadline).pipe(
        Effect.catchCause((cause) => Effect.logWarning("room sync failed", cause))
      )
    }
    if (due(lastCleanup, settings.staleCleanupIntervalMs, now)) {
      lastCleanup = now
      yield* cleanupStaleRooms().pipe(Effect.catchCause((cause) => Effect.logWarning("stale room cleanup failed", cause)))
    }
  })
  yield* tick.pipe(
    Effect.catchCause((cause) => Effect.sync(() => (holding = false)).pipe(Effect.andThen(Effect.logWarning("room sync lease unavailable", cause)))),
    Effect.andThen(Effect.sleep(Duration.millis(interval / 3))),
    Effect.forever,
    Effect.forkScoped
  )
  yield* Effect.addFinalizer(() => holding ? Effect.ignore(store.releaseSyncLease(id)) : Effect.void)
  yield* health.section("room_sync", statusSection(() => holding).pipe(Effect.provideService(RoomStore, store)))
}))
