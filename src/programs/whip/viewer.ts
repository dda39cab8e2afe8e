import { Effect, Option } from "effect"
import { TokenRejected } from "../../layers/Tokens.ts"
import type { SessionId } from "../../schemas/ids.ts"
import { verifyAccessToken } from "../auth/authenticate.ts"
import { authorize, isOperator } from "../sessions/access.ts"
import type { ResourceCaller } from "./resource.ts"
import { userHolder } from "./resources.ts"
import { shareHolder } from "./share.ts"

/**
 * Who may watch session `id` over WHEP: its own user or an operator (an access token; another
 * user's is 403), or whoever holds a share token the owner minted for it. Anything else is TokenRejected (401).
 */
export const viewerOf = Effect.fn("whep.viewer")(function*(token: string, id: SessionId) {
  const principal = yield* Effect.result(verifyAccessToken(token))
  if (principal._tag === "Success") {
    yield* authorize(principal.success, id, "read")
    const caller: ResourceCaller = { holder: userHolder(principal.success), operator: isOperator(principal.success) }
    return caller
  }
  if (principal.failure._tag === "ServiceUnavailable") return yield* principal.failure
  const share = yield* shareHolder(token, id)
  if (Option.isNone(share)) return yield* new TokenRejected({ reason: "not an access token nor a share token of this session" })
  const caller: ResourceCaller = { holder: share.value, operator: false }
  return caller
})
