import { Context, Effect, Layer, Option } from "effect"
import { Counter, Gauge, Histogram } from "prom-client"
import type { RoomEvent } from "../../schemas/rooms.ts"
import { Metrics } from "../Metrics.ts"
import { RoomStore } from "../RoomStore.ts"

export type SyncResult = "success" | "failure"
export type WebhookResult = "applied" | "duplicate" | "stale" | "ignored" | "rejected" | "invalid" | "failed"

/**
 * Room metrics. The gauges are read from the state store at scrape time, so every instance shows
 * the same cluster-wide figures: `auralink_rooms_active`, `auralink_participants` (now) and the
 * seed's `auralink_sync_success_rate` (0-1, over every sync any instance ran). The seed's
 * `auralink_participants_total` is a counter of joins this instance applied: Prometheus reserves
 * `_total` for counters (promtool rejects a gauge named so).
 */
export class RoomMetrics extends Context.Service<RoomMetrics, {
  readonly sync: (result: SyncResult, seconds: number) => Effect.Effect<void>
  readonly webhook: (event: string, result: WebhookResult) => Effect.Effect<void>
  readonly events: (events: ReadonlyArray<RoomEvent>) => Effect.Effect<void>
  readonly staleRemoved: (n: number) => Effect.Effect<void>
}>()("auralink/rooms/RoomMetrics") {
  static readonly layer = Layer.effect(
    RoomMetrics,
    Effect.gen(function*() {
      const { registry } = yield* Metrics
      const store = yield* RoomStore
      const scrape = <A>(effect: Effect.Effect<A, unknown>) => Effect.runPromise(Effect.option(effect))
      new Gauge({
        name: "auralink_rooms_active",
        help: "LiveKit rooms active (all instances, read from the state store at scrape time)",
        registers: [registry],
        async collect() {
          const rooms = await scrape(store.rooms)
          if (Option.isSome(rooms)) this.set(rooms.value.filter((r) => r.state === "active").length)
        }
      })
      new Gauge({
        name: "auralink_participants",
        help: "Participants in active LiveKit rooms (all instances, read from the state store at scrape time)",
        registers: [registry],
        async collect() {
          const total = await scrape(
            Effect.flatMap(store.rooms, (rooms) =>
              Effect.forEach(
                rooms.filter((r) => r.state === "active"),
                (r) => store.participantCount(r.name),
                { concurrency: 16 }
              ))
          )
          if (Option.isSome(total)) this.set(total.value.reduce((a, b) => a + b, 0))
        }
      })
      new Gauge({
        name: "auralink_sync_success_rate",
        help: "Successful room syncs / all room syncs, 0-1 (all instances; 1 before the first)",
        registers: [registry],
        async collect() {
          const totals = await scrape(store.syncTotals)
          if (Option.isSome(totals)) {
            const all = totals.value.successful + totals.value.failed
            this.set(all === 0 ? 1 : totals.value.successful / all)
          }
        }
      })
      const joins = new Counter({
        name: "auralink_participants_total",
        help: "Participant joins this instance applied (sync or webhook)",
        registers: [registry]
      })
      const syncs = new Counter({
        name: "auralink_room_syncs_total",
        help: "Room syncs this instance ran, by result",
        labelNames: ["result"] as const,
        registers: [registry]
      })
      const duration = new Histogram({
        name: "auralink_room_sync_duration_seconds",
        help: "Duration of one room sync (list rooms, list participants, reconcile, write)",
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers: [registry]
      })
      const webhooks = new Counter({
        name: "auralink_livekit_webhooks_total",
        help: "LiveKit webhook deliveries, by event and result",
        labelNames: ["event", "result"] as const,
        registers: [registry]
      })
      const events = new Counter({
        name: "auralink_room_events_total",
        help: "Room events published, by type and source",
        labelNames: ["type", "source"] as const,
        registers: [registry]
      })
      const stale = new Counter({ name: "auralink_rooms_stale_removed_total", help: "Finished rooms removed by stale cleanup", registers: [registry] })
      return {
        sync: (result, seconds) =>
          Effect.sync(() => {
            syncs.inc({ result })
            duration.observe(seconds)
          }),
        // LiveKit event names are a known set, but a forged-then-verified name could be anything: bound the label.
        webhook: (event, result) => Effect.sync(() => webhooks.inc({ event: /^[a-z_]{1,40}$/.test(event) ? event : "other", result })),
        events: (published) =>
          Effect.sync(() => {
            for (const e of published) {
              events.inc({ type: e.type, source: e.source })
              if (e.type === "participant_joined") joins.inc()
            }
          }),
        staleRemoved: (n) => Effect.sync(() => stale.inc(n))
      }
    })
  )
}
