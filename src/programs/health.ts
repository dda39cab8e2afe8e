import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { AppConfig } from "../layers/Config.ts"
import { Health } from "../layers/Health.ts"
import { Metrics } from "../layers/Metrics.ts"
import { Api } from "../schemas/api.ts"
import { NotReady } from "../schemas/health.ts"

const liveness = Effect.sync(() => ({ status: "healthy" as const, timestamp: Date.now() }))

/** Liveness, readiness, status and metrics: the operator's view of the service. */
export const SystemHandlers = HttpApiBuilder.group(
  Api,
  "system",
  Effect.fn(function*(handlers) {
    const config = yield* AppConfig
    const health = yield* Health
    const { registry } = yield* Metrics
    const startedAt = new Date()

    return handlers.handleAll({
      health: () => liveness,
      healthz: () => liveness,
      ready: () =>
        Effect.flatMap(health.readiness, ({ dependencies, ready, shuttingDown }) =>
          ready
            ? Effect.succeed({ status: "ready" as const, shuttingDown, dependencies })
            : Effect.fail(new NotReady({ status: "not_ready", shuttingDown, dependencies }))),
      status: () =>
        Effect.gen(function*() {
          const memory = process.memoryUsage()
          return {
            service: {
              name: config.service.name,
              version: config.service.version,
              environment: config.service.environment,
              region: config.service.region,
              bridgeId: config.service.bridgeId,
              uptimeSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
              startedAt: startedAt.toISOString()
            },
            process: { pid: process.pid, node: process.version, rssBytes: memory.rss, heapUsedBytes: memory.heapUsed },
            features: config.features,
            components: yield* health.sections
          }
        }),
      metrics: () => Effect.promise(() => registry.metrics())
    })
  })
)
