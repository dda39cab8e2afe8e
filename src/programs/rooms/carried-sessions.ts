import { Effect } from "effect"
import { MediaServer, type SessionStats } from "../../layers/MediaServer.ts"
import { Sessions } from "../../layers/SessionStore.ts"
import { openStates, type Session } from "../../schemas/session.ts"

/** One open session this instance carries, with what mediasoup measures of it (no media here yet: no producers). */
export interface CarriedSession {
  readonly session: Session
  readonly stats: SessionStats
}

const noMedia: SessionStats = { producers: [], transports: [] }

/**
 * The open sessions this instance started that name a room or a participant (what the room media
 * state and the QoS samples are about), each with its media stats. One statement reads them all,
 * and only those sessions' stats are asked of mediasoup: a read and the stats of its transports and
 * producers per session every QOS_SAMPLE_INTERVAL_MS were 20 queries a second, and their worker
 * requests, at 100 sessions that name neither (bench/audio-ingest).
 */
export const carriedSessions = Effect.gen(function*() {
  const sessions = yield* Sessions
  const media = yield* MediaServer
  const found = yield* sessions.findMany(yield* sessions.openHere)
  const open = found.filter((s) => openStates.includes(s.state) && (s.config.room !== undefined || s.config.participantIdentity !== undefined))
  return yield* Effect.forEach(open, (session) =>
    // No media on this instance yet, or its worker stalled: nothing measured this time.
    Effect.map(Effect.orElseSucceed(media.sessionStats(session.id), () => noMedia), (stats): CarriedSession => ({ session, stats })), { concurrency: 16 })
})
