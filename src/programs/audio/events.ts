import { Effect, Layer, Stream } from "effect"
import { HttpEffect, HttpRouter, HttpServerRequest, HttpServerResponse, ProblemDetails } from "effect/http"
import { AuthServices } from "../auth/http.ts"
import { verifyAccessToken } from "../auth/authenticate.ts"
import { SessionEvents } from "../../layers/sessions/events.ts"
import { getSession } from "../sessions/get.ts"
import { SessionServices } from "../sessions/http.ts"
import { AudioIngest } from "./ingest.ts"
import { MediaServices } from "../signaling/http.ts"
import { capturedServices } from "../captured.ts"

export const EVENTS_PATH = "/api/webrtc/:sessionId/events"

const encoder = new TextEncoder()
const event = (name: string, data: unknown) => encoder.encode(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`)

/** A state event's data: `{state}`, with the reason when the session failed (`{state:"error", error}`). */
const stateOf = (session: { readonly state: string; readonly error: string | null }) =>
  session.error === null ? { state: session.state } : { state: session.state, error: session.error }

/** Bearer header, or `access_token` in the query (RFC 6750 §2.3): EventSource cannot set headers. */
const tokenOf = (request: HttpServerRequest.HttpServerRequest) => {
  const header = request.headers["authorization"]
  if (header !== undefined && /^bearer /i.test(header)) return header.slice(7).trim()
  return new URL(request.url, "http://localhost").searchParams.get("access_token") ?? ""
}

const refuse = (status: number, title: string, headers: Record<string, string> = {}) =>
  ProblemDetails.toResponse({ type: "about:blank", status, title }).pipe(HttpServerResponse.setHeaders(headers))

/**
 * Server-sent events of one session for its owner: `event: state` ({state}, and `error` once
 * it failed) now and on every change, and `event: transcript` (the ASR gateway's transcripts). Ends when the session ends.
 */
const sessionEvents = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const { sessionId } = yield* HttpRouter.params
  const principal = yield* Effect.result(verifyAccessToken(tokenOf(request)))
  if (principal._tag === "Failure") return refuse(401, "Unauthorized", { "www-authenticate": 'Bearer error="invalid_token"' })
  const session = yield* Effect.result(getSession(principal.success, sessionId ?? ""))
  if (session._tag === "Failure") {
    const tag = session.failure._tag
    return tag === "SessionForbidden" ? refuse(403, "Forbidden") : tag === "SessionNotFound" ? refuse(404, "Not Found") : yield* Effect.die(session.failure)
  }
  const states = yield* (yield* SessionEvents).subscribe(session.success.id)
  const transcripts = yield* (yield* AudioIngest).transcripts(session.success.id)
  const body = Stream.merge(
    Stream.make(event("state", stateOf(session.success))).pipe(
      Stream.concat(states.pipe(Stream.map((s) => event("state", stateOf(s)))))
    ),
    transcripts.pipe(Stream.map((t) => event("transcript", t))),
    { haltStrategy: "left" }
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
