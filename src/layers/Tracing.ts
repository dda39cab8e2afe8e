import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http"
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer, Option } from "effect"
import { AppConfig } from "./Config.ts"

/**
 * OpenTelemetry tracing: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, every Effect span (HTTP server
 * requests, SQL statements, programs' `Effect.fn` spans) is exported over OTLP/HTTP to
 * `<endpoint>/v1/traces`; without it spans stay in-process (they still feed log traceIds).
 * Incoming W3C `traceparent` headers are continued by effect's HTTP server middleware.
 */
export const TracingLive = Layer.unwrap(Effect.gen(function*() {
  const config = yield* AppConfig
  if (Option.isNone(config.tracing.otlpEndpoint)) return Layer.empty
  const url = `${config.tracing.otlpEndpoint.value.replace(/\/+$/, "")}/v1/traces`
  yield* Effect.logInfo(`tracing: exporting spans over OTLP/HTTP to ${url}`)
  return NodeSdk.layer(() => ({
    resource: {
      serviceName: config.service.name,
      serviceVersion: config.service.version,
      attributes: {
        "deployment.environment": config.service.environment,
        "cloud.region": config.service.region,
        "auralink.bridge_id": config.service.bridgeId
      }
    },
    spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter({ url }), { scheduledDelayMillis: 500 })
  }))
}))
