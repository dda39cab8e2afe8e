import { Duration, Effect, Layer, Stream } from "effect"
import { HttpEffect, HttpRouter, HttpServerRequest, HttpServerResponse, ProblemDetails } from "effect/http"
import { AuthServices } from "../auth/http.ts"
import { verifyAccessToken } from "../auth/authenticate.ts"
import { Health } from "../../layers/Health.ts"
import { SessionEvents } from "../../layers/sessions/events.ts"
import { getSession } from "../sessions/get.ts"
import { SessionServices } from "../sessions/http.ts"
import { AudioIngest } from "./ingest.ts"
import { MediaServices } from "../signaling/http.ts"
import { capturedServices } from "../captured.ts"
import { OUTAGE_RETRY_AFTER_SECONDS } from "../../schemas/unavailable.ts"

export const EVENTS_PATH = "/api/webrtc/:sessionId/events"

/** How long an SSE stream outlives the start of shutdown (its session normally ends sooner). */
const SSE_SHUTDOWN_GRACE = Duration.seconds(2)

const encoder = new TextEncoder()
const event = (name: string, data: unknown) => encoder.encode(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`)

/** Bearer header, or `access_token` in the query (RFC 6750 §2.3): EventSource cannot set headers. */
const tokenOf = (request: HttpServerRequest.HttpServerRequest) => {
  const header = request.headers["authorization"]
  if (header !== undefined && /^bearer /i.test(header)) return header.slice(7).trim()
  return new URL(request.url, "http://localhost").searchParams.get("access_token") ?? ""
}

const refuse = (status: number, title: string, headers: Record<string, string> = {}) =>
  ProblemDetails.toResponse({ type: "about:blank", status, title }).pipe(HttpServerResponse.setHeaders(headers))

/**
 * Server-sent events of one session for its owner: `event: state` ({state}) now and on every
 * change, and `event: transcript` (the ASR gateway's transcripts). Ends when the session ends.
 */
const sessionEvents = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const { sessionId } = yield* HttpRouter.params
  const principal = yield* Effect.result(verifyAccessToken(tokenOf(request)))
  if (principal._tag === "Failure") {
    return principal.failure._tag === "ServiceUnavailable"
      ? refuse(503, "Service Unavailable", { "retry-after": String(principal.failure.retryAfterSeconds) })
      : refuse(401, "Unauthorized", { "www-authenticate": 'Bearer error="invalid_token"' })
  }
  const session = yield* Effect.result(getSession(principal.success, sessionId ?? ""))
  if (session._tag === "Failure") {
    const tag = session.failure._tag
    return tag === "SessionForbidden" ? refuse(403, "Forbidden") : tag === "SessionNotFound" ? refuse(404, "Not Found") : yield* Effect.die(session.failure)
  }
  // Redis down: no change could reach this stream, so refuse it (the client retries) rather than go silent.
  const states = yield* Effect.result((yield* SessionEvents).subscribe(session.success.id))
  if (states._tag === "Failure") return refuse(503, "Service Unavailable", { "retry-after": String(OUTAGE_RETRY_AFTER_SECONDS) })
  const transcripts = yield* (yield* AudioIngest).transcripts(session.success.id)
  const health = yield* Health
  // At shutdown: `event: going_away`, then the session's end (`state`), or the stream is cut after a grace.
  const goingAway = Stream.fromEffect(health.goingAway).pipe(Stream.map(() => event("going_away", { reason: "shutdown" })))
  const content = Stream.merge(
    Stream.make(event("state", { state: session.success.state })).pipe(
      Stream.concat(states.success.pipe(Stream.map((s) => event("state", { state: s.state }))))
    ),
    transcripts.pipe(Stream.map((t) => event("transcript", t))),
    { haltStrategy: "left" }
  )
  const body = Stream.merge(content, goingAway, { haltStrategy: "left" }).pipe(
    Stream.interruptWhen(Effect.andThen(health.goingAway, Effect.sleep(SSE_SHUTDOWN_GRACE)))
  )
  // The subscriptions (request scope) live as long as the response stream, not the handler.
  return HttpEffect.scopeTransferToStream(HttpServerResponse.stream(body, {
    contentType: "text/event-stream",
    headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
  }))
}).pipe(Effect.orDie)

/** The events route, with the services it reads (built once below the listeners, see SharedServices). */
export const SessionEventsRoute = HttpRouter.use((router) =>
  Effect.gen(function*() {
    // What the handler needs beyond the request itself, captured once and given to every request.
    const services = yield* capturedServices<Exclude<Effect.Services<typeof sessionEvents>, HttpRouter.Provided>>()
    yield* router.add("GET", EVENTS_PATH, sessionEvents.pipe(Effect.provideContext(services)))
  })
).pipe(Layer.provide(Layer.mergeAll(SessionServices, AuthServices, MediaServices)))
