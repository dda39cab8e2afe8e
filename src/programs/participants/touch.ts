import { Clock, Effect } from "effect"
import { ParticipantStore } from "../../layers/ParticipantStore.ts"
import type { ParticipantIdentity } from "../../schemas/ids.ts"

/** Marks the participant heard-from now (room sync: seen in a room), changing nothing else. No principal: the caller is the service. */
export const touchParticipant = Effect.fn("participants.touch")(function*(identity: ParticipantIdentity) {
  yield* (yield* ParticipantStore).touch(identity, yield* Clock.currentTimeMillis)
})
