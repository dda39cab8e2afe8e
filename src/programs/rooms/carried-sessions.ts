import { Effect, Option } from "effect"
import { MediaServer, type SessionStats } from "../../layers/MediaServer.ts"
import { Sessions } from "../../layers/SessionStore.ts"
import { openStates, type Session } from "../../schemas/session.ts"

/** One open session this instance carries, with what mediasoup measures of it (no media here yet: no producers). */
export interface CarriedSession {
  readonly session: Session
  readonly stats: SessionStats
}

const noMedia: SessionStats = { producers: [], transports: [] }

/** The open sessions this instance started, each with its media stats. */
export const carriedSessions = Effect.gen(function*() {
  const sessions = yield* Sessions
  const media = yield* MediaServer
  const found = yield* Effect.forEach(yield* sessions.openHere, sessions.find, { concurrency: 16 })
  const open = found.flatMap((s) => Option.isSome(s) && openStates.includes(s.value.state) ? [s.value] : [])
  return yield* Effect.forEach(open, (session) =>
    // No media on this instance yet, or its worker stalled: nothing measured this time.
    Effect.map(Effect.orElseSucceed(media.sessionStats(session.id), () => noMedia), (stats): CarriedSession => ({ session, stats })), { concurrency: 16 })
})
