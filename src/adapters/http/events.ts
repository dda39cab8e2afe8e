import { Duration, Effect, Option, Result, Stream } from "effect"
import { HttpEffect, HttpRouter, HttpServerRequest, HttpServerRespondable, HttpServerResponse } from "effect/http"
import { AppConfig } from "../../layers/Config.ts"
import { Health } from "../../layers/Health.ts"
import { SessionEvents } from "../../layers/sessions/events.ts"
import { Sessions } from "../../layers/SessionStore.ts"
import { EventStreams } from "../../programs/audio/event-streams.ts"
import { AudioIngest } from "../../programs/audio/ingest.ts"
import { getSession } from "../../programs/sessions/get.ts"
import { SessionId } from "../../schemas/ids.ts"
import { isTerminal } from "../../schemas/session.ts"
import { OUTAGE_RETRY_AFTER_SECONDS } from "../../schemas/unavailable.ts"
import { decodeParam, principalOrResponse, refuse } from "./bearer.ts"
import { capturedServices } from "./captured.ts"

export const EVENTS_PATH = "/api/webrtc/:sessionId/events"

/** How long an SSE stream outlives the drain (its session normally ends sooner). */
const SSE_SHUTDOWN_GRACE = Duration.seconds(2)

const encoder = new TextEncoder()
const event = (name: string, data: unknown) => encoder.encode(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`)

/** A state event's data: `{state}`, with the reason when the session failed (`{state:"error", error}`). */
const stateOf = (session: { readonly state: string; readonly error: string | null }) =>
  session.error === null ? { state: session.state } : { state: session.state, error: session.error }

/**
 * Server-sent events of one session for its owner: `event: state` ({state}, and `error` once
 * it failed) now and on every change, and `event: transcript` (the ASR gateway's transcripts). Ends after the session's
 * terminal state; a session already ended answers 204, which stops an EventSource reconnecting.
 * Connects and bad tokens count against the rate limits; open streams are capped per session and user.
 */
const sessionEvents = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const path = new URL(request.url, "http://x").pathname
  const { sessionId } = yield* HttpRouter.params
  const principal = yield* principalOrResponse(request, path)
  if (Result.isFailure(principal)) return principal.failure
  const decoded = decodeParam(SessionId, "sessionId", sessionId)
  if (Result.isFailure(decoded)) return decoded.failure
  const session = yield* Effect.result(getSession(principal.success, decoded.success))
  if (session._tag === "Failure") {
    const tag = session.failure._tag
    return tag === "SessionForbidden" ? refuse(403, "Forbidden") : tag === "SessionNotFound" ? refuse(404, "Not Found") : yield* Effect.die(session.failure)
  }
  const id = session.success.id
  if (isTerminal(session.success.state)) return HttpServerResponse.empty({ status: 204 })
  const held = yield* Effect.result((yield* EventStreams).hold(id, principal.success.userId))
  // The cap's problem renders itself, as on the REST routes.
  if (held._tag === "Failure") return yield* HttpServerRespondable.toResponse(held.failure)
  // Redis down: no change could reach this stream, so refuse it (the client retries) rather than go silent.
  const states = yield* Effect.result((yield* SessionEvents).subscribe(id))
  if (states._tag === "Failure") return refuse(503, "Service Unavailable", { "retry-after": String(OUTAGE_RETRY_AFTER_SECONDS) })
  // Read again once subscribed: a change between the first read and the subscription is not lost.
  const now = Option.getOrElse(yield* (yield* Sessions).findFresh(id), () => session.success)
  const transcripts = yield* (yield* AudioIngest).transcripts(id)
  const health = yield* Health
  const { cluster: { drainTimeoutMs } } = yield* AppConfig
  const first = Stream.make(event("state", stateOf(now)))
  const content = isTerminal(now.state) ? first : Stream.merge(
    // The stream ends with the session's terminal state (a reconnecting EventSource then gets 204 and stops).
    first.pipe(Stream.concat(states.success.pipe(Stream.takeUntil((s) => isTerminal(s.state)), Stream.map((s) => event("state", stateOf(s)))))),
    transcripts.pipe(Stream.map((t) => event("transcript", t))),
    { haltStrategy: "left" }
  )
  // At a drain: `event: going_away`, then the session's end (`state`), or the stream is cut once the drain is over.
  const goingAway = Stream.fromEffect(health.goingAway).pipe(Stream.map(() => event("going_away", { reason: "shutdown" })))
  const body = Stream.merge(content, goingAway, { haltStrategy: "left" }).pipe(
    Stream.interruptWhen(Effect.andThen(health.goingAway, Effect.sleep(Duration.sum(Duration.millis(drainTimeoutMs), SSE_SHUTDOWN_GRACE))))
  )
  // The subscriptions and the stream's place (request scope) live as long as the response stream, not the handler.
  return HttpEffect.scopeTransferToStream(HttpServerResponse.stream(body, {
    contentType: "text/event-stream",
    // Its own connection, closed when the stream ends (a session's end, a drain): no idle keep-alive holds a closing listener.
    headers: { "cache-control": "no-cache", "x-accel-buffering": "no", connection: "close" }
  }))
}).pipe(Effect.orDie)

/** The events route; the services it reads are built once below the listeners (see main.ts). */
export const SessionEventsRoute = HttpRouter.use((router) =>
  Effect.gen(function*() {
    // What the handler needs beyond the request itself, captured once and given to every request.
    const services = yield* capturedServices<Exclude<Effect.Services<typeof sessionEvents>, HttpRouter.Provided>>()
    yield* router.add("GET", EVENTS_PATH, sessionEvents.pipe(Effect.provideContext(services)))
  })
)
