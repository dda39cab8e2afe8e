import { Context, Effect, Layer } from "effect"
import { collectDefaultMetrics, Histogram, Registry } from "prom-client"

/**
 * The prom-client registry behind `/metrics`: default process metrics plus every metric the
 * layers and programs register on it. One registry per runtime (no global default registry),
 * so tests and several runtimes in one process never collide.
 */
export class Metrics extends Context.Service<Metrics, {
  readonly registry: Registry
  readonly httpRequestDuration: Histogram<"method" | "route" | "status">
}>()("auralink/Metrics") {
  static readonly layer = Layer.effect(
    Metrics,
    Effect.sync(() => {
      const registry = new Registry()
      collectDefaultMetrics({ register: registry })
      const httpRequestDuration = new Histogram({
        name: "http_request_duration_seconds",
        help: "HTTP request duration in seconds, by method, route template and status",
        labelNames: ["method", "route", "status"] as const,
        buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers: [registry]
      })
      return { registry, httpRequestDuration }
    })
  )
}
