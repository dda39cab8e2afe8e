import { Effect } from "effect"
import type { Principal } from "../../schemas/auth.ts"
import { authorize } from "./access.ts"
import type { SessionId } from "../../schemas/ids.ts"

/** One session, with its config and context (own sessions; operators: any). */
export const getSession = Effect.fn("sessions.get")(function*(principal: Principal, id: SessionId) {
  return yield* authorize(principal, id, "read")
})
