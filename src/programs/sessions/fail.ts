import { Effect } from "effect"
import { applyTransition } from "./transition.ts"

/** Internal (media path): pending or active -> error, keeping `reason` in the session's `error`. */
export const failSession = Effect.fn("sessions.fail")(function*(id: string, reason: string, actor = "media") {
  return yield* applyTransition(id, "error", { actor, reason, error: reason })
})
