import { Clock, Effect } from "effect"
import { ParticipantStore } from "../../layers/ParticipantStore.ts"
import type { Principal } from "../../schemas/auth.ts"
import type { ParticipantIdentity } from "../../schemas/ids.ts"
import type { Presence, PresenceStatus } from "../../schemas/participants.ts"
import { authorizeParticipant } from "./access.ts"
import { readParticipant } from "./state.ts"

/** Sets the participant's presence status (`offline` too: signing off); answers its presence after the change. */
export const updatePresence = Effect.fn("participants.updatePresence")(function*(principal: Principal, identity: ParticipantIdentity, status: PresenceStatus) {
  yield* authorizeParticipant(principal, identity)
  yield* (yield* ParticipantStore).setPresence(identity, status, yield* Clock.currentTimeMillis)
  const { presence }: { readonly presence: Presence } = yield* readParticipant(identity)
  return presence
})
