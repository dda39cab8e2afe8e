import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { Authentication } from "./auth.ts"
import { AuraIdBadRequest, AuraIdInput, AuraIdNotFound, ContactQuery, ResolvedAuraId, ResolveRequest, ResolveResponse } from "./auraid.ts"
import { UserRateLimit } from "./rate-limit.ts"
import { ServiceUnavailableResponse } from "./unavailable.ts"

// 503: the Communication Service is down (and nothing usable is cached) or resolution is not configured.
const errors = [AuraIdNotFound, AuraIdBadRequest, ServiceUnavailableResponse] as const

/** AuraID resolution (README "AuraID resolution"): email and phone only to the AuraID's own user or an operator. */
export class AuraIdApi extends HttpApiGroup.make("auraid")
  .add(
    HttpApiEndpoint.get("get", "/:id", { params: { id: AuraIdInput }, success: ResolvedAuraId, error: errors }),
    HttpApiEndpoint.post("resolve", "/resolve", { payload: ResolveRequest, success: ResolveResponse, error: errors }),
    HttpApiEndpoint.get("findByContact", "/", { query: ContactQuery, success: ResolvedAuraId, error: errors })
  )
  .prefix("/api/auraid")
  .middleware(UserRateLimit)
  .middleware(Authentication)
  .annotateMerge(
    OpenApi.annotations({ title: "AuraID", description: "AuraID resolution through the Communication Service (cached), batch and reverse lookup" })
  )
{}
