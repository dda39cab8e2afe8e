import { Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, OpenApi } from "effect/http-api"
import { Liveness, NotReady, Readiness, ServiceStatus } from "./health.ts"

/** The Prometheus text exposition format. */
export const PrometheusText = Schema.String.pipe(HttpApiSchema.asText({ contentType: "text/plain; version=0.0.4; charset=utf-8" }))

export class SystemApi extends HttpApiGroup.make("system", { topLevel: true })
  .add(
    HttpApiEndpoint.get("health", "/health", { success: Liveness }),
    HttpApiEndpoint.get("healthz", "/healthz", { success: Liveness }),
    HttpApiEndpoint.get("ready", "/ready", { success: Readiness, error: NotReady }),
    HttpApiEndpoint.get("status", "/status", { success: ServiceStatus }),
    HttpApiEndpoint.get("metrics", "/metrics", { success: PrometheusText })
  )
  .annotateMerge(OpenApi.annotations({ title: "System", description: "Liveness, readiness, status and metrics" }))
{}

/** The whole HTTP API; later groups (auth, sessions, signaling) are added here. */
export class Api extends HttpApi.make("auralink-ingress-egress")
  .add(SystemApi)
  .middleware(HttpApiMiddleware.ProblemDetails)
  .annotateMerge(OpenApi.annotations({ title: "AuraLink Ingress-Egress API", version: "0.1.0" }))
{}
