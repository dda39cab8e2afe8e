import { Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, OpenApi } from "effect/http-api"
import {
  Authentication,
  DeviceCredentials,
  DeviceNotFound,
  Forbidden,
  InvalidClientResponse,
  InvalidGrantResponse,
  ProvisioningHeaders,
  ProvisioningUnauthorizedResponse,
  RefreshRequest,
  RegisterDevice,
  RevokeRequest,
  TokenRequest,
  TokenResponse
} from "./auth.ts"
import { AuraIdApi } from "./auraid-api.ts"
import { ClusterApi } from "./cluster-api.ts"
import { withSessionEvents } from "./events-api.ts"
import { Liveness, NotReady, Readiness, ServiceStatus } from "./health.ts"
import { ParticipantsApi } from "./participants-api.ts"
import { RateLimit, UserRateLimit } from "./rate-limit.ts"
import { RoomsApi } from "./rooms-api.ts"
import { SessionsApi } from "./sessions-api.ts"
import { ServiceUnavailableResponse } from "./unavailable.ts"
import { WebRtcApi } from "./webrtc-api.ts"
import { DeviceId } from "./ids.ts"

/** The Prometheus text exposition format. */
export const PrometheusText = Schema.String.pipe(HttpApiSchema.asText({ contentType: "text/plain; version=0.0.4; charset=utf-8" }))

export class SystemApi extends HttpApiGroup.make("system", { topLevel: true })
  .add(
    HttpApiEndpoint.get("health", "/health", { success: Liveness }),
    HttpApiEndpoint.get("healthz", "/healthz", { success: Liveness }),
    HttpApiEndpoint.get("ready", "/ready", { success: Readiness, error: NotReady }),
    // Optional operator credential (the provisioning key or an operator access token) for the full view.
    HttpApiEndpoint.get("status", "/status", { headers: ProvisioningHeaders, success: ServiceStatus }),
    HttpApiEndpoint.get("metrics", "/metrics", { success: PrometheusText })
  )
  .annotateMerge(OpenApi.annotations({ title: "System", description: "Liveness, readiness, status and metrics" }))
{}

/** Device registration and the token endpoints (credentials in the body or the provisioning key). */
export class AuthApi extends HttpApiGroup.make("auth")
  .add(
    HttpApiEndpoint.post("registerDevice", "/devices", {
      headers: ProvisioningHeaders,
      payload: RegisterDevice,
      success: DeviceCredentials.pipe(HttpApiSchema.status(201)),
      error: [Forbidden, ProvisioningUnauthorizedResponse]
    }),
    HttpApiEndpoint.delete("revokeDevice", "/devices/:id", {
      params: { id: DeviceId },
      headers: ProvisioningHeaders,
      error: [ProvisioningUnauthorizedResponse, DeviceNotFound, ServiceUnavailableResponse]
    }),
    HttpApiEndpoint.post("token", "/token", { payload: TokenRequest, success: TokenResponse, error: InvalidClientResponse }),
    HttpApiEndpoint.post("refresh", "/refresh", { payload: RefreshRequest, success: TokenResponse, error: InvalidGrantResponse })
  )
  .prefix("/api/auth")
  .middleware(RateLimit)
  .annotateMerge(OpenApi.annotations({ title: "Auth", description: "Device registration, access and refresh tokens" }))
{}

/** The public keys that verify this service's access tokens (empty with HS256). */
export const JwkSetSchema = Schema.Struct({ keys: Schema.Array(Schema.Record(Schema.String, Schema.Unknown)) })

export class JwksApi extends HttpApiGroup.make("jwks", { topLevel: true })
  .add(HttpApiEndpoint.get("jwks", "/.well-known/jwks.json", { success: JwkSetSchema }))
  .annotateMerge(OpenApi.annotations({ title: "JWKS", description: "Access-token verification keys (RFC 7517)" }))
{}

/** Endpoints that need a bearer access token. */
export class AuthSessionApi extends HttpApiGroup.make("authSession")
  .add(HttpApiEndpoint.post("revoke", "/revoke", { payload: RevokeRequest }))
  .prefix("/api/auth")
  .middleware(UserRateLimit)
  .middleware(Authentication)
  .annotateMerge(OpenApi.annotations({ title: "Auth session", description: "Sign-out for the bearer of an access token" }))
{}

/** The whole HTTP API; later groups (auth, sessions, signaling) are added here. */
export class Api extends HttpApi.make("auralink-ingress-egress")
  .add(SystemApi)
  .add(AuthApi)
  .add(JwksApi)
  .add(AuthSessionApi)
  .add(SessionsApi)
  .add(WebRtcApi)
  .add(RoomsApi)
  .add(ParticipantsApi)
  .add(AuraIdApi)
  .add(ClusterApi)
  .middleware(HttpApiMiddleware.ProblemDetails)
  .annotateMerge(OpenApi.annotations({ title: "AuraLink Ingress-Egress API", version: "0.1.0", transform: withSessionEvents }))
{}
