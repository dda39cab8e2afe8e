import { Duration, Effect, FiberSet, Layer, Option, Schedule, Schema, Stream } from "effect"
import { AppConfig } from "../../layers/Config.ts"
import { type MediaFact, MediaServer } from "../../layers/MediaServer.ts"
import { SessionEvents } from "../../layers/sessions/events.ts"
import { SessionMetrics } from "../../layers/sessions/metrics.ts"
import { Sessions } from "../../layers/SessionStore.ts"
import { isTerminal } from "../../schemas/session.ts"
import { failSession } from "../sessions/fail.ts"
import { applyTransition } from "../sessions/transition.ts"
import { SessionId, type TransportId } from "../../schemas/ids.ts"

/** The error a session gets when the media worker carrying it dies. */
const WORKER_DIED = "media worker died"

/**
 * A session's media lives as long as the session: closed once it ends (stop, expiry, error, from
 * this instance or another, the sweeper's batch included), or when its watch fails.
 */
const watch = (id: SessionId) =>
  Effect.scoped(Effect.gen(function*() {
    // Redis down: keep trying (the media stays up) rather than close a live session's media.
    const changes = yield* (yield* SessionEvents).subscribe(id).pipe(Effect.retry({ schedule: Schedule.spaced(Duration.millis(500)) }))
    const now = yield* (yield* Sessions).findFresh(id)
    if (Option.isSome(now) && isTerminal(now.value.state)) return
    yield* Stream.runDrain(changes)
  })).pipe(
    Effect.catchCause((cause) => Effect.logWarning("session watch failed; closing its media", cause)),
    Effect.ensuring(MediaServer.use((media) => media.closeSession(id))),
    Effect.annotateLogs({ sessionId: id })
  )

/** The reason a session ends with when its client vanished (ICE consent lost) and did not come back. */
export const CONSENT_LOST = "consent_lost"

/** The reason a session ends with when its client's DTLS association failed or was closed and it did not come back. */
export const DTLS_ENDED = { failed: "dtls_failed", closed: "dtls_closed" } as const

/**
 * A client gone from a WebRTC transport (ICE consent lost, its TCP connection closed, or its DTLS
 * failed or closed): the transport is closed at once (its producers, and the audio and AIC
 * pipelines on them, end), and the session ends (expired, with `reason`) when
 * MEDIA_CONSENT_GRACE_MS later it has no client transport left here; a client that came back on a
 * new transport keeps it (a WHEP viewer's transport is not the client's: its loss ends only itself).
 */
const clientGone = (id: SessionId, transportId: TransportId, reason: string) =>
  Effect.gen(function*() {
    const media = yield* MediaServer
    const { media: config } = yield* AppConfig
    yield* Effect.logInfo("client gone from its WebRTC transport: transport closed").pipe(
      Effect.annotateLogs({ event: reason === CONSENT_LOST ? "ice_consent_lost" : reason, transportId })
    )
    yield* Effect.ignore(media.closeTransport(id, transportId))
    yield* Effect.sleep(Duration.millis(config.consentGraceMs))
    if ((yield* media.clientTransports(id)) > 0) return
    yield* applyTransition(id, "expired", { actor: "media", reason })
  }).pipe(
    // Ended meanwhile by someone else (stop, expiry): nothing to do.
    Effect.catchTags({ IllegalTransition: () => Effect.void, SessionNotFound: () => Effect.void }),
    Effect.catchCause((cause) => Effect.logWarning("could not end session after its client left", cause)),
    Effect.annotateLogs({ sessionId: id })
  )

/** MediaServer keys media by any text; only a session id has a session to follow (others are left to their owner). */
const asSessionId = Schema.decodeUnknownOption(SessionId)

/** The sessions a dead worker carried go to error (their media went with it). */
const failLost = (sessions: ReadonlyArray<SessionId>) =>
  Effect.forEach(sessions, (id) =>
    failSession(id, WORKER_DIED).pipe(
      Effect.catchCause((cause) => Effect.logWarning("could not fail session after worker death", cause).pipe(Effect.annotateLogs({ sessionId: id })))
    ), { discard: true })

/**
 * Session-media lifecycle: joins MediaServer's facts with session changes and decides the
 * transitions (session ended -> its media closed; worker died -> its sessions in error; client
 * gone (ICE or DTLS) -> its transport closed, then its session expired). Runs for
 * the life of the layer; at release every watch is interrupted, closing the media it watched.
 */
export const MediaLifecycleLive = Layer.effectDiscard(Effect.gen(function*() {
  const media = yield* MediaServer
  // Subscribed while the layer builds, so no router made after start-up goes unwatched.
  const facts = yield* media.facts
  const running = yield* FiberSet.make()
  const act = (fact: MediaFact): Effect.Effect<void, never, AppConfig | MediaServer | Sessions | SessionEvents | SessionMetrics> => {
    switch (fact._tag) {
      case "MediaOpened":
        return Option.match(asSessionId(fact.sessionId), { onNone: () => Effect.void, onSome: watch })
      case "IceLost":
        return Option.match(asSessionId(fact.sessionId), { onNone: () => Effect.void, onSome: (id) => clientGone(id, fact.transportId, CONSENT_LOST) })
      case "DtlsEnded":
        return Option.match(asSessionId(fact.sessionId), {
          onNone: () => Effect.void,
          onSome: (id) => clientGone(id, fact.transportId, DTLS_ENDED[fact.state])
        })
      case "WorkerDied":
        return failLost(fact.sessions.flatMap((id) => Option.toArray(asSessionId(id))))
    }
  }
  // Each fact acted on in its own fiber: a slow store does not hold up the next session's watch.
  yield* facts.pipe(Stream.runForEach((fact) => FiberSet.run(running, act(fact))), Effect.forkScoped)
}))
