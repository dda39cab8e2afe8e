import { Context, Effect, Layer } from "effect"
import { Counter, Gauge } from "prom-client"
import { Metrics } from "../Metrics.ts"

export type AdmissionRefusal = "capacity" | "draining"
export type RedirectOutcome = "redirected" | "owner_gone"

/** What an instance reports of itself at each heartbeat. */
export interface InstanceLoad {
  readonly sessions: number
  readonly capacity: number
  readonly draining: boolean
}

/** The cluster's metrics: this instance's load and admission, redirects, and the instances it sees. */
export class ClusterMetrics extends Context.Service<ClusterMetrics, {
  readonly load: (load: InstanceLoad) => Effect.Effect<void>
  readonly instances: (alive: number, lost: number) => Effect.Effect<void>
  readonly refused: (reason: AdmissionRefusal) => Effect.Effect<void>
  readonly redirect: (outcome: RedirectOutcome) => Effect.Effect<void>
  readonly sessionsLost: (n: number) => Effect.Effect<void>
}>()("auralink/cluster/ClusterMetrics") {
  static readonly layer = Layer.effect(
    ClusterMetrics,
    Effect.gen(function*() {
      const registers = [(yield* Metrics).registry]
      const sessions = new Gauge({ name: "auralink_instance_sessions", help: "Open (pending or active) sessions this instance owns", registers })
      const capacity = new Gauge({ name: "auralink_instance_capacity_sessions", help: "Open sessions this instance may own (admission control)", registers })
      const ratio = new Gauge({ name: "auralink_instance_load_ratio", help: "auralink_instance_sessions / auralink_instance_capacity_sessions", registers })
      const draining = new Gauge({ name: "auralink_instance_draining", help: "1 while this instance drains (refuses new sessions)", registers })
      const instances = new Gauge({
        name: "auralink_cluster_instances",
        help: "Instances registered in the state store as this instance sees them: alive, or lost (registration expired, sessions not yet ended)",
        labelNames: ["state"] as const,
        registers
      })
      const refused = new Counter({
        name: "auralink_admission_rejected_total",
        help: "New sessions this instance refused with 503, by reason (capacity reached, draining)",
        labelNames: ["reason"] as const,
        registers
      })
      const redirects = new Counter({
        name: "auralink_cluster_redirects_total",
        help: "Requests for a session owned by another instance: redirected (307) to it, or refused (503) because it is gone",
        labelNames: ["outcome"] as const,
        registers
      })
      const lost = new Counter({ name: "auralink_cluster_sessions_lost_total", help: "Sessions of lost instances this instance moved to error", registers })
      for (const reason of ["capacity", "draining"] as const) refused.inc({ reason }, 0)
      for (const outcome of ["redirected", "owner_gone"] as const) redirects.inc({ outcome }, 0)
      return {
        load: (load) =>
          Effect.sync(() => {
            sessions.set(load.sessions)
            capacity.set(load.capacity)
            ratio.set(load.capacity === 0 ? 0 : load.sessions / load.capacity)
            draining.set(load.draining ? 1 : 0)
          }),
        instances: (alive, lostCount) =>
          Effect.sync(() => {
            instances.set({ state: "alive" }, alive)
            instances.set({ state: "lost" }, lostCount)
          }),
        refused: (reason) => Effect.sync(() => refused.inc({ reason })),
        redirect: (outcome) => Effect.sync(() => redirects.inc({ outcome })),
        sessionsLost: (n) => Effect.sync(() => lost.inc(n))
      }
    })
  )
}
