import { Effect, Option, Result, Schema, SchemaIssue } from "effect"
import { HttpServerRequest, HttpServerResponse, ProblemDetails } from "effect/http"
import { type EndpointClass, rateLimitedResponse } from "../../layers/RateLimiter.ts"
import { bearerToken, verifyAccessToken } from "../../programs/auth/authenticate.ts"
import { tokenOrTicket } from "../../programs/cluster/affinity.ts"
import { countBadToken } from "../../programs/auth/bad-tokens.ts"
import { checkRateLimit } from "../../programs/rate-limit.ts"
import type { Principal } from "../../schemas/auth.ts"

/** For the routes made by hand (SSE, WHIP/WHEP): what the API's middleware does for the HttpApi routes. */

/** Bearer header, or `access_token` in the query (RFC 6750 §2.3): EventSource cannot set headers. */
export const tokenOf = (request: HttpServerRequest.HttpServerRequest) =>
  Option.getOrElse(bearerToken(request.headers["authorization"]), () => new URL(request.url, "http://localhost").searchParams.get("access_token") ?? "")

export const refuse = (status: number, title: string, headers: Record<string, string> = {}, detail?: string) =>
  ProblemDetails.toResponse({ type: "about:blank", status, title, ...(detail === undefined ? {} : { detail }) }).pipe(HttpServerResponse.setHeaders(headers))

export const unauthorized = () => refuse(401, "Unauthorized", { "www-authenticate": "Bearer error=\"invalid_token\"" })

/** A refused bearer: counted against the client IP's `auth` budget (429 once spent), else 401. */
export const badBearer = (request: HttpServerRequest.HttpServerRequest, path: string) =>
  Effect.gen(function*() {
    const decision = yield* countBadToken(Option.getOrElse(request.remoteAddress, () => "unknown"))
    if (Option.isSome(decision) && !decision.value.allowed) return rateLimitedResponse(decision.value, path)
    return unauthorized()
  })

/**
 * The principal of the request's access token, within the user's `budget` (`session` for what
 * starts sessions, as under /api/session); otherwise the response to send: 401 (bad token), 429
 * (budget spent), 503 (the deny-list cannot be read).
 */
export const principalOrResponse = (request: HttpServerRequest.HttpServerRequest, path: string, budgetClass: EndpointClass = "default") =>
  Effect.gen(function*() {
    const token = yield* tokenOrTicket(tokenOf(request), request.method, request.url)
    const principal = yield* Effect.result(verifyAccessToken(token))
    if (principal._tag === "Failure") {
      if (principal.failure._tag === "ServiceUnavailable") {
        return Result.fail(refuse(503, "Service Unavailable", { "retry-after": String(principal.failure.retryAfterSeconds) }))
      }
      return Result.fail(yield* badBearer(request, path))
    }
    const budget = yield* checkRateLimit(budgetClass, principal.success.userId)
    if (Option.isSome(budget) && !budget.value.allowed) return Result.fail(rateLimitedResponse(budget.value, path))
    return Result.succeed<Principal>(principal.success)
  })

/** The body HttpApi gives a path parameter that fails its schema (the REST routes), for a hand-made route. */
export const malformedParam = (field: string, issue: SchemaIssue.Issue) => {
  const [first] = SchemaIssue.makeFormatterStandardSchemaV1()(issue).issues
  return ProblemDetails.toResponse({
    type: "about:blank",
    status: 400,
    title: "Bad Request",
    detail: "Request validation failed",
    errors: [{ path: ["params", field], message: first?.message ?? "invalid" }]
  })
}

/** A path parameter decoded with its schema, or the 400 for it. */
export const decodeParam = <A>(schema: Schema.Decoder<A>, field: string, value: string | undefined) => {
  const decoded = Schema.decodeUnknownResult(schema)(value)
  return Result.isFailure(decoded) ? Result.fail(malformedParam(field, decoded.failure.issue)) : Result.succeed(decoded.success)
}
