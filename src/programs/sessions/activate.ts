import { Effect } from "effect"
import { applyTransition } from "./transition.ts"
import type { SessionId } from "../../schemas/ids.ts"

/** Internal (media path): pending -> active once media flows. No ownership check: the caller owns the transport. */
export const activateSession = Effect.fn("sessions.activate")(function*(id: SessionId, actor: string = "media", reason: string = "media connected") {
  return yield* applyTransition(id, "active", { actor, reason })
})
