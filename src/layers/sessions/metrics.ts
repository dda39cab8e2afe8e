import { Context, Effect, Layer } from "effect"
import { Counter, Gauge } from "prom-client"
import { type SessionState, sessionStates } from "../../schemas/session.ts"
import { Health } from "../Health.ts"
import { Metrics } from "../Metrics.ts"
import { Sessions } from "../SessionStore.ts"

/**
 * Session metrics on the service's registry. `auralink_sessions{state}` is read from Postgres on
 * every scrape, so it is right across instances; the counters count this instance's work.
 * Also registers the `/status` "sessions" section (counts by state).
 */
export class SessionMetrics extends Context.Service<SessionMetrics, {
  readonly transition: (from: SessionState, to: SessionState) => Effect.Effect<void>
  readonly sweep: (expired: number) => Effect.Effect<void>
}>()("auralink/sessions/SessionMetrics") {
  static readonly layer = Layer.effect(
    SessionMetrics,
    Effect.gen(function*() {
      const { registry } = yield* Metrics
      const sessions = yield* Sessions
      const counts = sessions.counts
      const services = yield* Effect.context<never>()
      new Gauge({
        name: "auralink_sessions",
        help: "Sessions by state (all instances, read from Postgres at scrape time)",
        labelNames: ["state"] as const,
        registers: [registry],
        async collect() {
          const byState = await Effect.runPromiseWith(services)(Effect.option(counts))
          if (byState._tag === "Some") { for (const state of sessionStates) this.set({ state }, byState.value[state]) }
        }
      })
      const transitions = new Counter({
        name: "auralink_session_transitions_total",
        help: "Session state transitions made by this instance, by from and to state",
        labelNames: ["from", "to"] as const,
        registers: [registry]
      })
      const sweeps = new Counter({ name: "auralink_session_expiry_sweeps_total", help: "Expiry sweeper runs", registers: [registry] })
      const expired = new Counter({ name: "auralink_sessions_expired_total", help: "Sessions expired by this instance's sweeper", registers: [registry] })
      yield* (yield* Health).section("sessions", Effect.map(Effect.option(counts), (c) => c._tag === "Some" ? c.value : { error: "unavailable" }))
      return {
        transition: (from, to) => Effect.sync(() => transitions.inc({ from, to })),
        sweep: (n) =>
          Effect.sync(() => {
            sweeps.inc()
            if (n > 0) expired.inc(n)
          })
      }
    })
  )
}
