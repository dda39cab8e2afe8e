import { Effect, Option, Redacted, Result } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerRespondable, HttpServerResponse } from "effect/http"
import type { Settings } from "../../config/settings.ts"
import { AppConfig } from "../../layers/Config.ts"
import { isOperator } from "../../programs/sessions/access.ts"
import { playWhep } from "../../programs/whip/play.ts"
import { publishWhip } from "../../programs/whip/publish.ts"
import { deleteResource, patchResource, type ResourceCaller } from "../../programs/whip/resource.ts"
import { userHolder } from "../../programs/whip/resources.ts"
import { viewerOf } from "../../programs/whip/viewer.ts"
import { checkRateLimit } from "../../programs/rate-limit.ts"
import { rateLimitedResponse } from "../../layers/RateLimiter.ts"
import { SessionId } from "../../schemas/ids.ts"
import { OUTAGE_RETRY_AFTER_SECONDS } from "../../schemas/unavailable.ts"
import { badBearer, decodeParam, principalOrResponse, refuse, tokenOf } from "./bearer.ts"
import { capturedServices } from "./captured.ts"

const SDP = "application/sdp"
const SDP_FRAGMENT = "application/trickle-ice-sdpfrag"

export const WHIP_PATHS = {
  endpoint: "/whip",
  session: "/whip/sessions/:sessionId",
  resource: "/whip/sessions/:sessionId/:resourceId",
  whep: "/whep/sessions/:sessionId",
  whepResource: "/whep/sessions/:sessionId/:resourceId"
} as const

const isType = (request: HttpServerRequest.HttpServerRequest, type: string) =>
  (request.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() === type

const unsupportedType = (expected: string, accept: "accept-post" | "accept-patch") =>
  refuse(415, "Unsupported Media Type", { [accept]: expected }, `Content-Type must be ${expected}`)

/** A program's failure as its problem (every one of them renders itself); 503s say when to retry. */
const problem = (error: unknown) =>
  Effect.gen(function*() {
    if (typeof error === "object" && error !== null && "_tag" in error) {
      if (error._tag === "TokenRejected") return undefined
      if (error._tag === "StateStoreError") return refuse(503, "Service Unavailable", { "retry-after": String(OUTAGE_RETRY_AFTER_SECONDS) })
    }
    if (!HttpServerRespondable.isRespondable(error)) return yield* Effect.die(error)
    const response = yield* HttpServerRespondable.toResponse(error)
    const retry = typeof error === "object" && error !== null && "retryAfterSeconds" in error ? error.retryAfterSeconds : undefined
    return typeof retry === "number" ? HttpServerResponse.setHeader(response, "retry-after", String(retry)) : response
  })

/** RFC 9725 §4.6: each configured STUN/TURN server as a `Link: <url>; rel="ice-server"` (TURN with its credentials). */
export const iceServerLinks = (media: Settings["media"]): string => {
  const quoted = (s: string) => `"${s.replace(/["\\]/g, "\\$&")}"`
  const turnAuth = [
    ...Option.toArray(Option.map(media.turnUsername, (u) => `; username=${quoted(u)}`)),
    ...Option.toArray(Option.map(media.turnCredential, (c) => `; credential=${quoted(Redacted.value(c))}; credential-type="password"`))
  ].join("")
  return [
    ...media.stunUrls.map((url) => `<${url}>; rel="ice-server"`),
    ...media.turnUrls.map((url) => `<${url}>; rel="ice-server"${turnAuth}`)
  ].join(", ")
}

const created = (answer: string, headers: Record<string, string>) => HttpServerResponse.text(answer, { status: 201, contentType: SDP, headers })

const pathOf = (request: HttpServerRequest.HttpServerRequest) => new URL(request.url, "http://x").pathname

/** The request's session id parameter, or the 400 for it. */
const sessionParam = Effect.map(HttpRouter.params, (params) => decodeParam(SessionId, "sessionId", params["sessionId"]))

/** The body, or 413 past the body limit. */
const bodyText = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.map(Effect.result(request.text), (r) => Result.mapError(r, () => refuse(413, "Content Too Large", {}, "the body exceeds the body limit")))

/** POST /whip and POST /whip/sessions/:sessionId: an offer in, 201 with the answer and the resource. */
const publish = (withSession: boolean) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (!isType(request, SDP)) return unsupportedType(SDP, "accept-post")
    // An offer starts (or joins) a session: the `session` budget, as POST /api/session.
    const principal = yield* principalOrResponse(request, pathOf(request), "session")
    if (Result.isFailure(principal)) return principal.failure
    const id = withSession ? yield* sessionParam : Result.succeed(undefined)
    if (Result.isFailure(id)) return id.failure
    const body = yield* bodyText(request)
    if (Result.isFailure(body)) return body.failure
    const outcome = yield* Effect.result(publishWhip(principal.success, id.success, body.success))
    if (Result.isFailure(outcome)) return (yield* problem(outcome.failure)) ?? refuse(500, "Internal Server Error")
    const links = iceServerLinks((yield* AppConfig).media)
    return created(outcome.success.answer, {
      location: outcome.success.location,
      etag: outcome.success.etag,
      "x-session-id": outcome.success.sessionId,
      ...(links === "" ? {} : { link: links })
    })
  })

/** POST /whep/sessions/:sessionId: a receive-only offer in, 201 with the answer and the viewer's resource. */
const play = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  if (!isType(request, SDP)) return unsupportedType(SDP, "accept-post")
  const id = yield* sessionParam
  if (Result.isFailure(id)) return id.failure
  const caller = yield* callerOf("whep", request, id.success)
  if (Result.isFailure(caller)) return caller.failure
  const body = yield* bodyText(request)
  if (Result.isFailure(body)) return body.failure
  const outcome = yield* Effect.result(playWhep(caller.success.holder, id.success, body.success))
  if (Result.isFailure(outcome)) return (yield* problem(outcome.failure)) ?? refuse(500, "Internal Server Error")
  const links = iceServerLinks((yield* AppConfig).media)
  return created(outcome.success.answer, { location: outcome.success.location, etag: outcome.success.etag, ...(links === "" ? {} : { link: links }) })
})

/** Who calls a WHIP (access token) or WHEP (access or share token) route, or the response refusing it. */
const callerOf = (kind: "whip" | "whep", request: HttpServerRequest.HttpServerRequest, id: SessionId) =>
  Effect.gen(function*() {
    const path = pathOf(request)
    if (kind === "whip") {
      const principal = yield* principalOrResponse(request, path)
      if (Result.isFailure(principal)) return Result.fail(principal.failure)
      const caller: ResourceCaller = { holder: userHolder(principal.success), operator: isOperator(principal.success) }
      return Result.succeed(caller)
    }
    const viewer = yield* Effect.result(viewerOf(tokenOf(request), id))
    if (Result.isFailure(viewer)) {
      return Result.fail((yield* problem(viewer.failure)) ?? (yield* badBearer(request, path)))
    }
    const budget = yield* checkRateLimit("default", viewer.success.holder)
    if (Option.isSome(budget) && !budget.value.allowed) return Result.fail(rateLimitedResponse(budget.value, path))
    const caller: ResourceCaller = viewer.success
    return Result.succeed(caller)
  })

/** PATCH on a resource: trickled candidates (204) or an ICE restart (200 with the server's new credentials). */
const patch = (kind: "whip" | "whep") =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (!isType(request, SDP_FRAGMENT)) return unsupportedType(SDP_FRAGMENT, "accept-patch")
    const id = yield* sessionParam
    if (Result.isFailure(id)) return id.failure
    const caller = yield* callerOf(kind, request, id.success)
    if (Result.isFailure(caller)) return caller.failure
    const body = yield* bodyText(request)
    if (Result.isFailure(body)) return body.failure
    const { resourceId = "" } = yield* HttpRouter.params
    const outcome = yield* Effect.result(patchResource(caller.success, kind, id.success, resourceId, body.success, request.headers["if-match"]))
    if (Result.isFailure(outcome)) return (yield* problem(outcome.failure)) ?? refuse(500, "Internal Server Error")
    if (outcome.success._tag === "Trickled") return HttpServerResponse.empty({ status: 204 })
    return HttpServerResponse.text(outcome.success.fragment, { status: 200, contentType: SDP_FRAGMENT, headers: { etag: outcome.success.etag } })
  })

/** DELETE on a resource: a publisher's ends its session, a viewer's ends only itself. */
const remove = (kind: "whip" | "whep") =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const id = yield* sessionParam
    if (Result.isFailure(id)) return id.failure
    const caller = yield* callerOf(kind, request, id.success)
    if (Result.isFailure(caller)) return caller.failure
    const { resourceId = "" } = yield* HttpRouter.params
    const outcome = yield* Effect.result(deleteResource(caller.success, kind, id.success, resourceId))
    if (Result.isFailure(outcome)) return (yield* problem(outcome.failure)) ?? refuse(500, "Internal Server Error")
    return HttpServerResponse.empty({ status: 200 })
  })

/** OPTIONS (without CORS: preflights are answered before routing): what the endpoint takes. */
const options = (headers: Record<string, string>) => Effect.succeed(HttpServerResponse.empty({ status: 204, headers }))
const POST_OPTIONS = { allow: "OPTIONS, POST", "accept-post": SDP }
const RESOURCE_OPTIONS = { allow: "OPTIONS, PATCH, DELETE", "accept-patch": SDP_FRAGMENT }

/** Every WHIP and WHEP route (SDP bodies and their own headers: routes of their own, not HttpApi ones). */
export const WHIP_ROUTES = [
  { method: "POST", path: WHIP_PATHS.endpoint, handler: publish(false) },
  { method: "POST", path: WHIP_PATHS.session, handler: publish(true) },
  { method: "PATCH", path: WHIP_PATHS.resource, handler: patch("whip") },
  { method: "DELETE", path: WHIP_PATHS.resource, handler: remove("whip") },
  { method: "POST", path: WHIP_PATHS.whep, handler: play },
  { method: "PATCH", path: WHIP_PATHS.whepResource, handler: patch("whep") },
  { method: "DELETE", path: WHIP_PATHS.whepResource, handler: remove("whep") },
  { method: "OPTIONS", path: WHIP_PATHS.endpoint, handler: options(POST_OPTIONS) },
  { method: "OPTIONS", path: WHIP_PATHS.session, handler: options(POST_OPTIONS) },
  { method: "OPTIONS", path: WHIP_PATHS.whep, handler: options(POST_OPTIONS) },
  { method: "OPTIONS", path: WHIP_PATHS.resource, handler: options(RESOURCE_OPTIONS) },
  { method: "OPTIONS", path: WHIP_PATHS.whepResource, handler: options(RESOURCE_OPTIONS) }
] as const

/** Every service any of the routes reads (a union over the handlers). */
type RouteServices = (typeof WHIP_ROUTES)[number]["handler"] extends Effect.Effect<infer _A, infer _E, infer R> ? R : never

/** The routes; the services they read are built once below the listeners (see main.ts). */
export const WhipRoutes = HttpRouter.use((router) =>
  Effect.gen(function*() {
    const services = yield* capturedServices<Exclude<RouteServices, HttpRouter.Provided>>()
    for (const route of WHIP_ROUTES) {
      const handler: Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, RouteServices> = route.handler
      yield* router.add(route.method, route.path, handler.pipe(Effect.orDie, Effect.provideContext(services)))
    }
  })
)
