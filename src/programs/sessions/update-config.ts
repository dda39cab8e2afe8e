import { Effect } from "effect"
import { Sessions } from "../../layers/SessionStore.ts"
import type { Principal } from "../../schemas/auth.ts"
import type { SessionConfigPatch } from "../../schemas/session.ts"
import { authorize } from "./access.ts"
import type { SessionId } from "../../schemas/ids.ts"

/** Merges the given fields into the config of the owner's pending or active session (SessionClosed, 409, otherwise). */
export const updateSessionConfig = Effect.fn("sessions.updateConfig")(function*(principal: Principal, id: SessionId, patch: SessionConfigPatch) {
  yield* authorize(principal, id, "write")
  return yield* (yield* Sessions).updateConfig(id, patch)
})
