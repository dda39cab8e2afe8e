import { Effect } from "effect"
import type { Principal } from "../../schemas/auth.ts"
import { openStates, sessionClosed } from "../../schemas/session.ts"
import { authorize } from "../sessions/access.ts"
import type { SessionId } from "../../schemas/ids.ts"

/** The caller's own session, which must be pending or active (403 / 404 as the sessions API, 409 when it has ended). */
export const openSession = Effect.fn("signaling.openSession")(function*(principal: Principal, id: SessionId) {
  const session = yield* authorize(principal, id, "write")
  if (!openStates.includes(session.state)) return yield* sessionClosed(session.state)
  return session
})
