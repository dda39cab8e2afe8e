import { Effect } from "effect"
import type { Principal } from "../../schemas/auth.ts"
import type { ParticipantIdentity } from "../../schemas/ids.ts"
import { authorizeParticipant } from "./access.ts"
import { readParticipant } from "./state.ts"

/** Capabilities, newest QoS sample and presence (`offline` when not heard from within PRESENCE_TIMEOUT_MS); 404 when nothing is known. */
export const getParticipant = Effect.fn("participants.get")(function*(principal: Principal, identity: ParticipantIdentity) {
  yield* authorizeParticipant(principal, identity)
  return yield* readParticipant(identity)
})
