import { Schema } from "effect"
import { MediaCapabilities, PresenceStatus, QosSample } from "../../schemas/participants.ts"

/** A time as stored: ISO 8601, one `Date.parse` reads. */
const Instant = Schema.String.check(Schema.makeFilter((text: string) => !Number.isNaN(Date.parse(text)), {
  expected: "an ISO 8601 date-time",
  message: "must be an ISO 8601 date-time"
}))

/** The presence a participant (or an operator) last set. */
export const PresenceRecord = Schema.Struct({ setStatus: PresenceStatus, updatedAt: Instant })
export type PresenceRecord = typeof PresenceRecord.Type

/**
 * The hash `state:<identity>`: capabilities and presence as JSON, when the participant was last
 * heard from, and when capabilities, QoS or presence last changed. Unknown fields are ignored.
 */
export const StateHash = Schema.Struct({
  capabilities: Schema.optionalKey(Schema.fromJsonString(MediaCapabilities)),
  presence: Schema.optionalKey(Schema.fromJsonString(PresenceRecord)),
  lastSeenAt: Schema.optionalKey(Instant),
  updatedAt: Schema.optionalKey(Instant)
})
export type StateHash = typeof StateHash.Type

/** One item of the list `qos:<identity>` (oldest first, as listPush appends). */
export const QosJson = Schema.fromJsonString(QosSample)

export const stateKey = (identity: string) => `state:${identity}`
export const qosKey = (identity: string) => `qos:${identity}`

/** The channel every write publishes the identity on. */
export const INVALIDATE_CHANNEL = "invalidate"
