import { Effect, Option } from "effect"
import { Sessions } from "../../layers/SessionStore.ts"
import type { Principal } from "../../schemas/auth.ts"
import { type Session, sessionForbidden, sessionNotFound } from "../../schemas/session.ts"
import type { SessionId } from "../../schemas/ids.ts"

/** Operators (a token whose space-separated scope has "operator") may list and read every session. */
export const isOperator = (principal: Principal): boolean => principal.scope.split(" ").includes("operator")

/** How a principal appears in session_events.actor. */
export const actorOf = (principal: Principal): string => `user:${principal.userId}/device:${principal.deviceId}`

/**
 * The session, if the principal may see it (`read`: its own, or any for an operator) or change it
 * (`write`: its own only). Unknown ids are 404, other users' sessions 403.
 */
export const authorize = Effect.fn("sessions.authorize")(function*(principal: Principal, id: SessionId, mode: "read" | "write") {
  const found = yield* (yield* Sessions).find(id)
  if (Option.isNone(found)) return yield* sessionNotFound(id)
  const session: Session = found.value
  const mine = session.userId === principal.userId
  if (!mine && !(mode === "read" && isOperator(principal))) return yield* sessionForbidden()
  return session
})
