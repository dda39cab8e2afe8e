import { Effect, Option, Schema } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import type { Cluster } from "../../layers/Cluster.ts"
import type { ClusterMetrics } from "../../layers/cluster/metrics.ts"
import type { AppConfig } from "../../layers/Config.ts"
import type { AuthMetrics } from "../../layers/auth/metrics.ts"
import type { AuthStore } from "../../layers/AuthStore.ts"
import { unavailableProblem } from "../../layers/http/problem.ts"
import { type RateLimiter, rateLimitedResponse } from "../../layers/RateLimiter.ts"
import type { TokenSigner } from "../../layers/Tokens.ts"
import type { StateStore } from "../../layers/StateStore.ts"
import type { Sessions } from "../../layers/SessionStore.ts"
import { mintTicket, placeSession, REDIRECT_TICKET_PARAM } from "../../programs/cluster/affinity.ts"
import { SessionId } from "../../schemas/ids.ts"
import { OUTAGE_RETRY_AFTER_SECONDS } from "../../schemas/unavailable.ts"
import { capturedServices } from "./captured.ts"

/** The routes whose work needs the session's media server: signaling and its events, WHIP and WHEP. */
const SESSION_MEDIA_PATH = /^\/(?:api\/webrtc|whip\/sessions|whep\/sessions)\/([^/]+)(?:\/|$)/
const decodeSessionId = Schema.decodeUnknownOption(SessionId)

/** The request URL with one query parameter added (or replaced). */
const withParam = (url: URL, name: string, value: string) => {
  const next = new URL(url)
  next.searchParams.set(name, value)
  return `${next.pathname}${next.search}`
}

/**
 * Session affinity: a request for a session whose media another instance holds gets `307` to that
 * instance's PUBLIC_URL with the same path and query (plus a redirect ticket when it carried
 * `Authorization`, which cross-origin redirects drop; the authentication of the owner takes it
 * back), or `503` with Retry-After when the owner is gone. CORS preflights pass.
 */
export const SessionAffinity = HttpRouter.middleware(
  Effect.gen(function*() {
    const services = yield* capturedServices<
      Cluster | ClusterMetrics | Sessions | StateStore | AppConfig | RateLimiter | TokenSigner | AuthStore | AuthMetrics
    >()
    return (httpEffect) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const url = new URL(request.url, "http://x")
        const matched = SESSION_MEDIA_PATH.exec(url.pathname)
        if (matched === null || request.method === "OPTIONS") return yield* httpEffect
        const id = decodeSessionId(matched[1])
        if (Option.isNone(id)) return yield* httpEffect
        const placement = yield* placeSession(id.value).pipe(Effect.provideContext(services))
        if (placement._tag === "Here") return yield* httpEffect
        const unavailable = (detail: string, retryAfterSeconds: number) => unavailableProblem(detail, retryAfterSeconds, url.pathname)
        if (placement._tag === "OwnerGone") {
          return unavailable("The instance that held this session's media is gone; the session is ending. Start a new session", placement.retryAfterSeconds)
        }
        let target = `${url.pathname}${url.search}`
        const authorization = request.headers["authorization"]
        if (authorization !== undefined) {
          const clientIp = Option.getOrElse(request.remoteAddress, () => "unknown")
          const ticket = yield* Effect.option(mintTicket(authorization, request.method, url.pathname, clientIp).pipe(Effect.provideContext(services)))
          // The state store cannot keep the ticket: the redirected request could not authenticate.
          if (Option.isNone(ticket)) return unavailable("The redirect to this session's instance cannot be prepared right now", OUTAGE_RETRY_AFTER_SECONDS)
          if (ticket.value._tag === "Limited") return rateLimitedResponse(ticket.value.decision, url.pathname)
          target = withParam(url, REDIRECT_TICKET_PARAM, ticket.value.id)
        }
        return HttpServerResponse.empty({ status: 307 }).pipe(
          HttpServerResponse.setHeaders({ location: `${placement.publicUrl}${target}`, "cache-control": "no-store" })
        )
      })
  }),
  { global: true }
)
