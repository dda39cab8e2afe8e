import { Schema } from "effect"
import { HttpApiError } from "effect/http-api"
import { ParticipantIdentity, SessionId } from "./ids.ts"

const Codec = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(32), Schema.isPattern(/^[A-Za-z0-9.+_/-]+$/))
const Codecs = Schema.Array(Codec).check(Schema.isMaxLength(16))

/** `1080p` or `1920x1080`. */
export const Resolution = Schema.String.check(Schema.isPattern(/^(\d{3,4}p|\d{2,5}x\d{2,5})$/))

/** What a participant's device can send and receive (the seed's MediaCapabilities). */
export const MediaCapabilities = Schema.Struct({
  videoCodecs: Codecs,
  audioCodecs: Codecs,
  maxResolution: Resolution,
  maxFrameRate: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 240 })),
  /** kbps. */
  maxBitrate: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_000_000 })),
  supportsAic: Schema.Boolean,
  supportsSimulcast: Schema.Boolean
})
export type MediaCapabilities = typeof MediaCapabilities.Type

const percent = Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 100 }))
const millis = Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 60_000 }))

/** A QoS report as a client sends it; MOS is computed (ITU-T G.107 E-model) when not given. */
export const QosReport = Schema.Struct({
  packetLossPercent: percent,
  jitterMs: millis,
  rttMs: millis,
  bandwidthKbps: Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: 10_000_000 })),
  mosScore: Schema.optionalKey(Schema.Finite.check(Schema.isBetween({ minimum: 1, maximum: 5 })))
})
export type QosReport = typeof QosReport.Type

/** One stored QoS sample: `reported` by a client, or `measured` from this service's own media stats. */
export const QosSample = Schema.Struct({
  packetLossPercent: percent,
  jitterMs: millis,
  /** null: not measurable (e.g. a receive-only transport without RTCP round trips). */
  rttMs: Schema.NullOr(millis),
  bandwidthKbps: Schema.Finite,
  mosScore: Schema.Finite,
  /** Whether `mosScore` came with the report or was computed with the E-model. */
  mosSource: Schema.Literals(["reported", "e-model"]),
  source: Schema.Literals(["reported", "measured"]),
  /** The session whose media was measured (measured samples only). */
  sessionId: Schema.optionalKey(SessionId),
  /** RFC 3339. */
  timestamp: Schema.String
})
export type QosSample = typeof QosSample.Type

export const PresenceStatus = Schema.Literals(["active", "idle", "away", "offline"])
export type PresenceStatus = typeof PresenceStatus.Type

export const PresenceUpdate = Schema.Struct({ status: PresenceStatus })

export const Presence = Schema.Struct({
  /** `offline` once nothing was heard from the participant within PRESENCE_TIMEOUT_MS, whatever was last set. */
  status: PresenceStatus,
  /** The status last set (by the participant or an operator); `active` while none was set. */
  setStatus: PresenceStatus,
  /** When the status was last set (while none was set: when the participant was last heard from). */
  updatedAt: Schema.String,
  lastSeenAt: Schema.String
})
export type Presence = typeof Presence.Type

/** The aggregate metadata of one participant (the seed's ParticipantMetadata). */
export const ParticipantState = Schema.Struct({
  identity: ParticipantIdentity,
  capabilities: Schema.NullOr(MediaCapabilities),
  /** The newest QoS sample. */
  qos: Schema.NullOr(QosSample),
  /** null only while nothing was heard from the participant (never, for a known one). */
  presence: Schema.NullOr(Presence),
  /** The last change of capabilities, QoS or presence (the last time heard from, without any). */
  updatedAt: Schema.String
})
export type ParticipantState = typeof ParticipantState.Type

export const QosHistoryQuery = Schema.Struct({
  limit: Schema.optionalKey(Schema.NumberFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: 10_000 })))
})

/** Newest first. */
export const QosHistory = Schema.Struct({ identity: ParticipantIdentity, samples: Schema.Array(QosSample) })
export type QosHistory = typeof QosHistory.Type

// ---- errors (problems; the gRPC adapter maps them by _tag) -------------------------------

export class ParticipantNotFound extends HttpApiError.Problem<ParticipantNotFound>()("ParticipantNotFound", {
  type: "about:blank",
  status: 404,
  title: "Not Found"
}, { detail: Schema.String }) {}

export class ParticipantForbidden extends HttpApiError.Problem<ParticipantForbidden>()("ParticipantForbidden", {
  type: "about:blank",
  status: 403,
  title: "Forbidden"
}, { detail: Schema.String }) {}

export const participantNotFound = (identity: string) => new ParticipantNotFound({ detail: `Nothing is known of participant ${identity}` })
export const participantForbidden = () => new ParticipantForbidden({ detail: "Only the participant itself or an operator may do this" })
