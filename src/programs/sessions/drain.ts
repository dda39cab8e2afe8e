import { Context, Duration, Effect, Fiber, Layer, Option, Schema } from "effect"
import { Health } from "../../layers/Health.ts"
import { MediaServer } from "../../layers/MediaServer.ts"
import { SessionEvents } from "../../layers/sessions/events.ts"
import { SessionMetrics } from "../../layers/sessions/metrics.ts"
import { Sessions } from "../../layers/SessionStore.ts"
import { SessionId } from "../../schemas/ids.ts"
import { failSession } from "./fail.ts"

/** The reason (session `error`, session_events) of a session ended because its instance stops. */
export const SHUTDOWN_REASON = "shutdown"
/** Sent on each session's events data channel before it is ended. */
export const GOING_AWAY_MESSAGE = JSON.stringify({ type: "going_away", reason: SHUTDOWN_REASON })
/** Between telling clients and closing their sessions, so the message leaves before the media closes. */
const TELL_BEFORE_END = Duration.millis(250)

/**
 * Every open session this process carries (started here, or with media here): told on its events
 * data channel that the server is going away, then ended (`error`, reason `shutdown`). A session
 * already ended (here or elsewhere) is left as it is.
 */
export const endSessionsForShutdown = Effect.gen(function*() {
  const sessions = yield* Sessions
  const media = yield* MediaServer
  const withMedia = (yield* media.status).sessions.map((s) => s.id)
  // MediaServer keys media by text: the ones that are session ids have a session to end.
  const ids = [...new Set([...(yield* sessions.openHere), ...withMedia.flatMap((id) => Option.toArray(Schema.decodeUnknownOption(SessionId)(id)))])]
  if (ids.length === 0) return 0
  for (const id of withMedia) media.sendEvent(id, GOING_AWAY_MESSAGE)
  if (withMedia.length > 0) yield* Effect.sleep(TELL_BEFORE_END)
  yield* Effect.forEach(ids, (id) =>
    failSession(id, SHUTDOWN_REASON, "system").pipe(
      Effect.catchTags({ IllegalTransition: () => Effect.void, SessionNotFound: () => Effect.void }),
      Effect.catchCause((cause) => Effect.logWarning("could not end session at shutdown", cause).pipe(Effect.annotateLogs({ sessionId: id })))
    ), { concurrency: 8, discard: true })
  yield* Effect.logInfo("shutdown: sessions ended").pipe(Effect.annotateLogs({ event: "shutdown_sessions_ended", sessions: ids.length }))
  return ids.length
})

/**
 * Ends this process's sessions at shutdown: `begin` (when the signal arrives) starts a first pass
 * at once; the layer's release (after the listeners closed, before the stores go) waits for it and
 * makes a second pass for sessions that requests in flight started meanwhile.
 */
export class SessionDrain extends Context.Service<SessionDrain, {
  readonly begin: Effect.Effect<void>
}>()("auralink/sessions/SessionDrain") {
  static readonly layer = Layer.effect(
    SessionDrain,
    Effect.gen(function*() {
      const health = yield* Health
      const services = yield* Effect.context<Sessions | MediaServer | SessionEvents | SessionMetrics>()
      const pass = endSessionsForShutdown.pipe(Effect.provideContext(services), Effect.asVoid)
      let first = Option.none<Fiber.Fiber<void>>()
      yield* Effect.addFinalizer(() =>
        Effect.gen(function*() {
          if (!(yield* health.shuttingDown)) return
          if (Option.isSome(first)) yield* Fiber.await(first.value)
          yield* pass
        })
      )
      return {
        begin: Effect.gen(function*() {
          if (Option.isNone(first)) first = Option.some(yield* Effect.forkDetach(pass))
        })
      }
    })
  )
}
