import { Context, Effect, Layer } from "effect"
import { collectDefaultMetrics, Histogram, Registry } from "prom-client"

/**
 * prom-client adds `nodejs_active_{handles,requests,resources}_total` gauges next to the same
 * gauges by type; Prometheus reserves `_total` for counters (promtool rejects them), and the
 * totals are a `sum()` of the typed series away, so they are dropped.
 */
const dropMisnamedGauges = (registry: Registry) => {
  for (const name of ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]) {
    registry.removeSingleMetric(name)
  }
}

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
      dropMisnamedGauges(registry)
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
