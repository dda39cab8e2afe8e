import { Effect } from "effect"
import type { Principal } from "../../schemas/auth.ts"
import { actorOf, authorize } from "./access.ts"
import { applyTransition } from "./transition.ts"

/** The owner ends an active session: active -> completed (anything else is IllegalTransition, 409). */
export const stopSession = Effect.fn("sessions.stop")(function*(principal: Principal, id: string, reason = "stopped by client") {
  yield* authorize(principal, id, "write")
  return yield* applyTransition(id, "completed", { actor: actorOf(principal), reason })
})
