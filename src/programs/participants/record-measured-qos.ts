import { Effect } from "effect"
import type { ParticipantIdentity, SessionId } from "../../schemas/ids.ts"
import { appendSample } from "./sample.ts"

/** What the QoS sampler measured of one session's media (mediasoup stats). */
export interface MeasuredQos {
  readonly identity: ParticipantIdentity
  readonly sessionId: SessionId
  readonly packetLossPercent: number
  readonly jitterMs: number
  /** null: no round trip measured (e.g. a receive-only transport without RTCP replies). */
  readonly rttMs: number | null
  readonly bandwidthKbps: number
}

const within = (min: number, max: number) => (n: number) => Math.min(max, Math.max(min, n))
const percent = within(0, 100)
const millis = within(0, 60_000)

/**
 * Stores a sample this service measured itself (`source: measured`, MOS from the E-model). No
 * principal: the caller is the service. Values beyond the sample's ranges are saturated, not refused
 * (a stats glitch must not lose the sample); a non-finite one is refused (ParticipantStoreError).
 */
export const recordMeasuredQos = Effect.fn("participants.recordMeasuredQos")(function*(measured: MeasuredQos) {
  return yield* appendSample(measured.identity, {
    packetLossPercent: percent(measured.packetLossPercent),
    jitterMs: millis(measured.jitterMs),
    rttMs: measured.rttMs === null ? null : millis(measured.rttMs),
    bandwidthKbps: Math.max(0, measured.bandwidthKbps),
    source: "measured",
    sessionId: measured.sessionId
  })
})
