import { Effect, Layer } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { AppConfig } from "../layers/Config.ts"
import { Health } from "../layers/Health.ts"
import { Metrics } from "../layers/Metrics.ts"
import { Api } from "../schemas/api.ts"
import { NotReady } from "../schemas/health.ts"
import { AuthServices } from "./auth/http.ts"
import { isOperatorRequest } from "./auth/operator.ts"
import { capturedServices } from "./captured.ts"

/** A state word (`ready`, `configured`, `closed`); anything with digits, dots, slashes or colons (ids, paths, addresses) is not. */
const STATE_WORD = /^[A-Za-z_]{1,32}$/

/** The public view of a component section: its numbers, booleans and state words (nested objects alike), and lists as their length. */
const summarize = (section: unknown, depth = 0): Record<string, unknown> => {
  if (typeof section !== "object" || section === null || depth > 4) return {}
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(section)) {
    if (typeof value === "number" || typeof value === "boolean") out[key] = value
    else if (typeof value === "string" && STATE_WORD.test(value)) out[key] = value
    else if (Array.isArray(value)) out[key] = value.length
    else if (typeof value === "object" && value !== null) out[key] = summarize(value, depth + 1)
  }
  return out
}

const liveness = Effect.sync(() => ({ status: "healthy" as const, timestamp: Date.now() }))

/** Liveness, readiness, status and metrics: the operator's view of the service. */
const SystemGroup = HttpApiBuilder.group(
  Api,
  "system",
  Effect.fn(function*(handlers) {
    const config = yield* AppConfig
    const health = yield* Health
    const { registry } = yield* Metrics
    const authServices = yield* capturedServices<AuthServicesOf>()
    const startedAt = new Date()

    return handlers.handleAll({
      health: () => liveness,
      healthz: () => liveness,
      ready: () =>
        Effect.flatMap(health.readiness, ({ dependencies, ready, shuttingDown }) =>
          ready
            ? Effect.succeed({ status: "ready" as const, shuttingDown, dependencies })
            : Effect.fail(new NotReady({ status: "not_ready", shuttingDown, dependencies }))),
      status: ({ headers }) =>
        Effect.gen(function*() {
          const operator = yield* isOperatorRequest(headers).pipe(Effect.provideContext(authServices))
          const components = yield* health.sections
          const identity = {
            service: {
              name: config.service.name,
              version: config.service.version,
              environment: config.service.environment,
              region: config.service.region,
              bridgeId: config.service.bridgeId,
              uptimeSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
              startedAt: startedAt.toISOString()
            },
            features: config.features
          }
          if (!operator) {
            return { view: "summary" as const, ...identity, components: Object.fromEntries(Object.entries(components).map(([name, section]) => [name, summarize(section)])) }
          }
          const memory = process.memoryUsage()
          return {
            view: "full" as const,
            ...identity,
            process: { pid: process.pid, node: process.version, rssBytes: memory.rss, heapUsedBytes: memory.heapUsed },
            components
          }
        }),
      metrics: () => Effect.promise(() => registry.metrics())
    })
  })
)

type AuthServicesOf = Layer.Success<typeof AuthServices> | AppConfig

/** The system endpoints, with the auth services that tell an operator's `/status` request. */
export const SystemHandlers = SystemGroup.pipe(Layer.provide(AuthServices))
