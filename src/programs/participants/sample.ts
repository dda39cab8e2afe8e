import { Clock, Effect } from "effect"
import { ParticipantStore } from "../../layers/ParticipantStore.ts"
import type { ParticipantIdentity, SessionId } from "../../schemas/ids.ts"
import type { QosSample } from "../../schemas/participants.ts"
import { mos, type NetworkQuality } from "./mos.ts"

export interface SampleInput extends NetworkQuality {
  readonly bandwidthKbps: number
  /** Given with a report; computed with the E-model when absent. */
  readonly mosScore?: number
  readonly source: QosSample["source"]
  readonly sessionId?: SessionId
}

const twoDecimals = (n: number) => Math.round(n * 100) / 100

/** Stores one QoS sample, stamped now (which also marks the participant heard-from), and returns it. */
export const appendSample = Effect.fn("participants.appendSample")(function*(identity: ParticipantIdentity, input: SampleInput) {
  const at = yield* Clock.currentTimeMillis
  const sample: QosSample = {
    packetLossPercent: input.packetLossPercent,
    jitterMs: input.jitterMs,
    rttMs: input.rttMs,
    bandwidthKbps: input.bandwidthKbps,
    mosScore: input.mosScore ?? twoDecimals(mos(input)),
    mosSource: input.mosScore === undefined ? "e-model" : "reported",
    source: input.source,
    ...(input.sessionId === undefined ? {} : { sessionId: input.sessionId }),
    timestamp: new Date(at).toISOString()
  }
  yield* (yield* ParticipantStore).appendQos(identity, sample, at)
  return sample
})
