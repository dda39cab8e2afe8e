import { Context, Effect, Layer } from "effect"
import { Counter } from "prom-client"
import { Metrics } from "../Metrics.ts"

export type RejectReason = "invalid_client" | "invalid_grant" | "refresh_reuse" | "invalid_token" | "provisioning"

/** The auth counters on the service's registry. */
export class AuthMetrics extends Context.Service<AuthMetrics, {
  readonly issued: Effect.Effect<void>
  readonly refreshed: Effect.Effect<void>
  readonly revoked: Effect.Effect<void>
  readonly rejected: (reason: RejectReason) => Effect.Effect<void>
}>()("auralink/auth/AuthMetrics") {
  static readonly layer = Layer.effect(
    AuthMetrics,
    Effect.gen(function*() {
      const { registry } = yield* Metrics
      const counter = (name: string, help: string) => new Counter({ name, help, registers: [registry] })
      const issued = counter("auralink_auth_tokens_issued_total", "Access/refresh token pairs issued for device credentials")
      const refreshed = counter("auralink_auth_tokens_refreshed_total", "Refresh tokens rotated")
      const revoked = counter("auralink_auth_tokens_revoked_total", "Revocations (token families, access tokens, devices)")
      const rejected = new Counter({
        name: "auralink_auth_tokens_rejected_total",
        help: "Rejected credentials and tokens, by reason",
        labelNames: ["reason"] as const,
        registers: [registry]
      })
      return {
        issued: Effect.sync(() => issued.inc()),
        refreshed: Effect.sync(() => refreshed.inc()),
        revoked: Effect.sync(() => revoked.inc()),
        rejected: (reason) => Effect.sync(() => rejected.inc({ reason }))
      }
    })
  )
}
