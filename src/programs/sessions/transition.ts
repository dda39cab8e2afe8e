import { Effect } from "effect"
import { SessionEvents } from "../../layers/sessions/events.ts"
import { SessionMetrics } from "../../layers/sessions/metrics.ts"
import { type Cause, Sessions } from "../../layers/SessionStore.ts"
import type { Session, SessionState } from "../../schemas/session.ts"
import type { SessionId } from "../../schemas/ids.ts"

/** Every transition goes through here: the guarded write, then the published change, the metric and a log line. */
export const applyTransition = Effect.fn("sessions.transition")(
  function*(id: SessionId, to: SessionState, cause: Cause & { readonly error?: string; readonly pendingReason?: string }) {
    const { from, session } = yield* (yield* Sessions).transition(id, to, cause)
    yield* announce(from, session)
    return session
  }
)

/** What follows a committed transition (also used by the sweeper for its batch). */
export const announce = Effect.fn("sessions.announce")(function*(from: SessionState, session: Session) {
  yield* (yield* SessionEvents).publish(session)
  yield* (yield* SessionMetrics).transition(from, session.state)
  yield* Effect.logInfo(`session ${from} -> ${session.state}`).pipe(
    Effect.annotateLogs({ event: "session_transition", sessionId: session.id, from, to: session.state })
  )
})
