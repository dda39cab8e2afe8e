import { Clock, Context, Deferred, Duration, Effect, Fiber, Layer, Option, Schema } from "effect"
import { Cluster } from "../../layers/Cluster.ts"
import { ClusterMetrics } from "../../layers/cluster/metrics.ts"
import { AppConfig } from "../../layers/Config.ts"
import { Health } from "../../layers/Health.ts"
import { MediaServer } from "../../layers/MediaServer.ts"
import { SessionEvents } from "../../layers/sessions/events.ts"
import { SessionMetrics } from "../../layers/sessions/metrics.ts"
import { Sessions } from "../../layers/SessionStore.ts"
import { SessionId } from "../../schemas/ids.ts"
import { Membership } from "../cluster/membership.ts"
import { failSession } from "./fail.ts"

/** The reason (session `error`, session_events) of a session ended because its instance stops. */
export const SHUTDOWN_REASON = "shutdown"
/** Sent on each session's events data channel when the drain begins (SSE streams get `event: going_away`). */
export const GOING_AWAY_MESSAGE = JSON.stringify({ type: "going_away", reason: SHUTDOWN_REASON })
/** How often the drain looks whether this instance still owns open sessions. */
const POLL = Duration.millis(250)

/** The keys of the media this process holds (by session). */
const withMedia = Effect.map(MediaServer.use((media) => media.status), (status) => status.sessions.map((s) => s.id))

/** Every open session this process carries ends (`error`, reason `shutdown`); one already ended (here or elsewhere) is left as it is. */
export const endSessionsForShutdown = Effect.gen(function*() {
  // Started here and not seen ending, or with media here (MediaServer keys media by text: the ones that are session ids).
  const mediaIds = (yield* withMedia).flatMap((id) => Option.toArray(Schema.decodeUnknownOption(SessionId)(id)))
  const ids = [...new Set([...(yield* (yield* Sessions).openHere), ...mediaIds])]
  if (ids.length === 0) return 0
  yield* Effect.forEach(ids, (id) =>
    failSession(id, SHUTDOWN_REASON, "system").pipe(
      Effect.catchTags({ IllegalTransition: () => Effect.void, SessionNotFound: () => Effect.void }),
      Effect.catchCause((cause) => Effect.logWarning("could not end session at shutdown", cause).pipe(Effect.annotateLogs({ sessionId: id })))
    ), { concurrency: 8, discard: true })
  yield* Effect.logInfo("shutdown: sessions ended").pipe(Effect.annotateLogs({ event: "shutdown_sessions_ended", sessions: ids.length }))
  return ids.length
})

export interface DrainState {
  /** Open sessions this instance owned when the drain began. */
  readonly sessions: number
  /** When the sessions still open are ended. */
  readonly deadline: Date
}

/**
 * The drain (SIGTERM, or `POST /api/admin/drain`), once per process: readiness turns 503 and new
 * sessions are refused; every client is told `going_away` (events data channel, SSE) and its media
 * goes on until it leaves or DRAIN_TIMEOUT_MS passes; then the sessions still open end (reason
 * `shutdown`). The layer's release (after the listeners closed, before the stores go) waits for it
 * and makes a second pass for sessions that requests in flight started meanwhile.
 */
export class SessionDrain extends Context.Service<SessionDrain, {
  /** Starts the drain (or returns the one under way). */
  readonly begin: Effect.Effect<DrainState>
  /** Completes when the drain is over: every session this instance carried ended. */
  readonly finished: Effect.Effect<void>
  /** Stops waiting for clients to leave: the remaining sessions end now (a second signal). */
  readonly hurry: Effect.Effect<void>
}>()("auralink/sessions/SessionDrain") {
  static readonly layer = Layer.effect(
    SessionDrain,
    Effect.gen(function*() {
      const health = yield* Health
      const membership = yield* Membership
      const { cluster: settings } = yield* AppConfig
      const services = yield* Effect.context<Sessions | MediaServer | SessionEvents | SessionMetrics | Cluster | ClusterMetrics>()
      const { id: self } = (yield* Cluster).self
      const hurried = yield* Deferred.make<void>()
      const done = yield* Deferred.make<void>()
      let started = Option.none<{ readonly state: DrainState; readonly fiber: Fiber.Fiber<void> }>()

      const owned = Effect.orElseSucceed((yield* Sessions).countOwned(self), () => 0)
      const clientsLeft = Effect.gen(function*() {
        // Owned (Postgres) rather than started here: a session stopped through another instance counts as gone.
        while ((yield* owned) > 0 || (yield* withMedia).length > 0) yield* Effect.sleep(POLL)
      }).pipe(Effect.provideContext(services))
      const drain = (sessions: number) =>
        Effect.gen(function*() {
          const media = yield* MediaServer
          for (const id of yield* withMedia) media.sendEvent(id, GOING_AWAY_MESSAGE)
          yield* Effect.logInfo("drain: clients told to go away").pipe(
            Effect.annotateLogs({ event: "drain_started", sessions, drainTimeoutMs: settings.drainTimeoutMs })
          )
          yield* Effect.raceFirst(clientsLeft, Deferred.await(hurried)).pipe(Effect.timeoutOption(Duration.millis(settings.drainTimeoutMs)))
          yield* endSessionsForShutdown
        }).pipe(
          Effect.provideContext(services),
          Effect.catchCause((cause) => Effect.logWarning("drain failed", cause)),
          Effect.ensuring(Deferred.succeed(done, undefined))
        )

      yield* Effect.addFinalizer(() =>
        Effect.gen(function*() {
          if (Option.isNone(started)) return
          yield* Fiber.await(started.value.fiber)
          yield* endSessionsForShutdown.pipe(Effect.provideContext(services), Effect.ignore)
        })
      )
      return {
        begin: Effect.gen(function*() {
          if (Option.isSome(started)) return started.value.state
          const sessions = yield* owned
          const state: DrainState = { sessions, deadline: new Date((yield* Clock.currentTimeMillis) + settings.drainTimeoutMs) }
          // Admission first: no session may be admitted once readiness says "not ready".
          yield* membership.startDraining
          yield* health.beginShutdown
          started = Option.some({ state, fiber: yield* Effect.forkDetach(drain(sessions)) })
          return state
        }),
        finished: Deferred.await(done),
        hurry: Effect.asVoid(Deferred.succeed(hurried, undefined))
      }
    })
  )
}
