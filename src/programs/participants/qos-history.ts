import { Effect } from "effect"
import { AppConfig } from "../../layers/Config.ts"
import { ParticipantStore } from "../../layers/ParticipantStore.ts"
import type { Principal } from "../../schemas/auth.ts"
import type { ParticipantIdentity } from "../../schemas/ids.ts"
import type { QosHistory } from "../../schemas/participants.ts"
import { authorizeParticipant } from "./access.ts"
import { readParticipant } from "./state.ts"

export const DEFAULT_HISTORY_LIMIT = 20

/** The newest `limit` QoS samples (default 20, at most QOS_HISTORY_CAP), newest first; 404 when nothing is known. */
export const qosHistory = Effect.fn("participants.qosHistory")(function*(principal: Principal, identity: ParticipantIdentity, limit?: number) {
  yield* authorizeParticipant(principal, identity)
  yield* readParticipant(identity)
  const { participants } = yield* AppConfig
  const samples = yield* (yield* ParticipantStore).qosHistory(identity, Math.min(limit ?? DEFAULT_HISTORY_LIMIT, participants.qosHistoryCap))
  const history: QosHistory = { identity, samples }
  return history
})
