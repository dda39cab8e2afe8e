import { Effect } from "effect"
import type { Principal } from "../../schemas/auth.ts"
import type { ParticipantIdentity } from "../../schemas/ids.ts"
import { participantForbidden } from "../../schemas/participants.ts"
import { isOperator } from "../sessions/access.ts"

/**
 * Who may read and write a participant's state (capabilities, QoS, presence):
 * - an operator (a token whose scope has `operator`) may read and write any participant;
 * - a device may read and write only the participant whose identity equals its user id (the
 *   identity this service's devices have in LiveKit rooms);
 * - anything else is 403 (ParticipantForbidden), decided before the participant is looked up, so
 *   a stranger cannot tell a known identity from an unknown one.
 */
export const authorizeParticipant = Effect.fn("participants.authorize")(function*(principal: Principal, identity: ParticipantIdentity) {
  if (isOperator(principal) || principal.userId === identity) return
  return yield* participantForbidden()
})
