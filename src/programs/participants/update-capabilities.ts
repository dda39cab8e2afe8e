import { Clock, Effect } from "effect"
import { ParticipantStore } from "../../layers/ParticipantStore.ts"
import type { Principal } from "../../schemas/auth.ts"
import type { ParticipantIdentity } from "../../schemas/ids.ts"
import type { MediaCapabilities } from "../../schemas/participants.ts"
import { authorizeParticipant } from "./access.ts"
import { readParticipant } from "./state.ts"

/** Replaces the participant's media capabilities; answers its state after the change. */
export const updateCapabilities = Effect.fn("participants.updateCapabilities")(
  function*(principal: Principal, identity: ParticipantIdentity, capabilities: MediaCapabilities) {
    yield* authorizeParticipant(principal, identity)
    yield* (yield* ParticipantStore).setCapabilities(identity, capabilities, yield* Clock.currentTimeMillis)
    return yield* readParticipant(identity)
  }
)
