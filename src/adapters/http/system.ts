import { Effect, Layer } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { AuthMetrics } from "../../layers/auth/metrics.ts"
import { AuthStore } from "../../layers/AuthStore.ts"
import { AppConfig } from "../../layers/Config.ts"
import { Health } from "../../layers/Health.ts"
import { Metrics } from "../../layers/Metrics.ts"
import { TokenSigner } from "../../layers/Tokens.ts"
import { isOperatorRequest } from "../../programs/auth/operator.ts"
import { liveness, readiness, statusReport } from "../../programs/health.ts"
import { Api } from "../../schemas/api.ts"
import { capturedServices, seeingApiMiddlewareOnly } from "./captured.ts"

/**
 * Liveness, readiness, status and metrics: the operator's view of the service. Its handlers get
 * their services here, so the group itself is built seeing only the API middleware (see
 * `seeingApiMiddlewareOnly`): /health and the probes pay for no copy of every service per request.
 */
export const SystemGroup = Layer.unwrap(Effect.gen(function*() {
  const { registry } = yield* Metrics
  const services = yield* capturedServices<AppConfig | Health | AuthStore | TokenSigner | AuthMetrics>()
  const startedAt = new Date()

  return seeingApiMiddlewareOnly(HttpApiBuilder.group(Api, "system", (handlers) =>
    handlers.handleAll({
      health: () => liveness,
      healthz: () => liveness,
      ready: () => readiness.pipe(Effect.provideContext(services)),
      status: ({ headers }) =>
        Effect.flatMap(isOperatorRequest(headers), (operator) => statusReport(operator, startedAt)).pipe(Effect.provideContext(services)),
      metrics: () => Effect.promise(() => registry.metrics())
    })))
}))
