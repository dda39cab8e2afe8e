import { Effect } from "effect"
import type { Principal } from "../../schemas/auth.ts"
import { actorOf, authorize } from "./access.ts"
import { applyTransition } from "./transition.ts"
import type { SessionId } from "../../schemas/ids.ts"

export const CANCELLED_REASON = "cancelled by client before media"

/**
 * The owner ends its session: active -> completed, or pending -> completed (a cancellation, so
 * logged with CANCELLED_REASON); an ended session is IllegalTransition (409).
 */
export const stopSession = Effect.fn("sessions.stop")(function*(principal: Principal, id: SessionId, reason: string = "stopped by client") {
  yield* authorize(principal, id, "write")
  return yield* applyTransition(id, "completed", { actor: actorOf(principal), reason, pendingReason: CANCELLED_REASON })
})
