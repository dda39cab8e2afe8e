import { Effect } from "effect"
import type { Principal } from "../../schemas/auth.ts"
import type { ParticipantIdentity } from "../../schemas/ids.ts"
import type { QosReport } from "../../schemas/participants.ts"
import { authorizeParticipant } from "./access.ts"
import { appendSample } from "./sample.ts"

/** A client's own QoS report; its MOS is kept when given (`mosSource: reported`), else computed (`e-model`). */
export const reportQos = Effect.fn("participants.reportQos")(function*(principal: Principal, identity: ParticipantIdentity, report: QosReport) {
  yield* authorizeParticipant(principal, identity)
  return yield* appendSample(identity, { ...report, source: "reported" })
})
