import { Effect } from "effect"
import { applyTransition } from "./transition.ts"

/** Internal (media path): pending -> active once media flows. No ownership check: the caller owns the transport. */
export const activateSession = Effect.fn("sessions.activate")(function*(id: string, actor = "media", reason = "media connected") {
  return yield* applyTransition(id, "active", { actor, reason })
})
