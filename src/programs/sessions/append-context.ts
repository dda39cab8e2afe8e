import { Effect } from "effect"
import { AppConfig } from "../../layers/Config.ts"
import { Sessions } from "../../layers/SessionStore.ts"
import type { Principal } from "../../schemas/auth.ts"
import type { AppendContext } from "../../schemas/session.ts"
import { authorize } from "./access.ts"
import type { SessionId } from "../../schemas/ids.ts"

/** Appends a turn to the context of the owner's open session; only the newest SESSION_CONTEXT_CAP are kept. */
export const appendSessionContext = Effect.fn("sessions.appendContext")(function*(principal: Principal, id: SessionId, entry: AppendContext) {
  yield* authorize(principal, id, "write")
  const { sessions } = yield* AppConfig
  return yield* (yield* Sessions).appendContext(id, entry, sessions.contextCap)
})
