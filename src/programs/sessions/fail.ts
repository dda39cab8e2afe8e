import { Effect } from "effect"
import { applyTransition } from "./transition.ts"
import type { SessionId } from "../../schemas/ids.ts"

/** Internal (media path): pending or active -> error, keeping `reason` in the session's `error`. */
export const failSession = Effect.fn("sessions.fail")(function*(id: SessionId, reason: string, actor: string = "media") {
  return yield* applyTransition(id, "error", { actor, reason, error: reason })
})
