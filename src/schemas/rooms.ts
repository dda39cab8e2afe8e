import { Schema } from "effect"
import { HttpApiError } from "effect/http-api"
import { ParticipantIdentity, RoomName } from "./ids.ts"

// ---- the room model (LiveKit's membership, as this service keeps it) --------------------

export const TrackKind = Schema.Literals(["audio", "video", "data"])

export const TrackRecord = Schema.Struct({
  sid: Schema.String,
  kind: TrackKind,
  /** LiveKit's source (`microphone`, `camera`, `screen_share`, ...), lower-case. */
  source: Schema.String,
  name: Schema.String,
  mimeType: Schema.String,
  muted: Schema.Boolean
})
export type TrackRecord = typeof TrackRecord.Type

export const ParticipantRecord = Schema.Struct({
  identity: ParticipantIdentity,
  sid: Schema.String,
  name: Schema.String,
  metadata: Schema.String,
  /** Epoch ms. */
  joinedAt: Schema.Number,
  tracks: Schema.Array(TrackRecord)
})
export type ParticipantRecord = typeof ParticipantRecord.Type

export const RoomState = Schema.Literals(["active", "finished"])

export const RoomRecord = Schema.Struct({
  name: RoomName,
  sid: Schema.String,
  /** `finished`: LiveKit no longer has it; stale cleanup removes it after the grace period. */
  state: RoomState,
  metadata: Schema.String,
  /** Epoch ms, LiveKit's creation time. */
  createdAt: Schema.Number,
  /** Epoch ms when it was seen gone (finished rooms only). */
  finishedAt: Schema.NullOr(Schema.Number),
  /** Epoch ms of the change that wrote this record (a sync's poll or a webhook's createdAt). */
  updatedAt: Schema.Number
})
export type RoomRecord = typeof RoomRecord.Type

/** The seed's MediaState: this service's own media in a room, summed over its instances. */
export const MediaState = Schema.Struct({
  conferenceId: RoomName,
  activeStreams: Schema.Int,
  totalBandwidthKbps: Schema.Finite,
  /** `audio` (no video), `LD` (< 360 lines), `SD` (< 720), `HD` (< 1080), `FHD`. */
  qualityLevel: Schema.Literals(["none", "audio", "LD", "SD", "HD", "FHD"]),
  aicEnabled: Schema.Boolean,
  /** Compressed / original bytes of the AIC pipeline's frames (1 when nothing was compressed). */
  compressionRatio: Schema.Finite,
  sessions: Schema.Int,
  updatedAt: Schema.String
})
export type MediaState = typeof MediaState.Type

// ---- events -----------------------------------------------------------------------------

export const RoomEventType = Schema.Literals([
  "room_started",
  "room_finished",
  "participant_joined",
  "participant_left",
  "track_published",
  "track_unpublished"
])
export type RoomEventType = typeof RoomEventType.Type

export const RoomEvent = Schema.Struct({
  type: RoomEventType,
  room: RoomName,
  identity: Schema.optionalKey(ParticipantIdentity),
  trackSid: Schema.optionalKey(Schema.String),
  /** What noticed it: the periodic sync or a LiveKit webhook. */
  source: Schema.Literals(["sync", "webhook"]),
  /** Epoch ms of the change. */
  at: Schema.Number
})
export type RoomEvent = typeof RoomEvent.Type

// ---- API views --------------------------------------------------------------------------

export const RoomSummary = Schema.Struct({
  name: RoomName,
  sid: Schema.String,
  state: RoomState,
  metadata: Schema.String,
  createdAt: Schema.String,
  numParticipants: Schema.Int,
  updatedAt: Schema.String
})
export type RoomSummary = typeof RoomSummary.Type

export const RoomList = Schema.Struct({ rooms: Schema.Array(RoomSummary) })

export const RoomParticipant = Schema.Struct({
  identity: ParticipantIdentity,
  sid: Schema.String,
  name: Schema.String,
  metadata: Schema.String,
  joinedAt: Schema.String,
  tracks: Schema.Array(TrackRecord),
  /** When the identity is an AuraID (`aura:<id>`) and AuraID resolution answered: its display name and verified flag. */
  displayName: Schema.optionalKey(Schema.String),
  verified: Schema.optionalKey(Schema.Boolean)
})

export const RoomDetail = Schema.Struct({
  ...RoomSummary.fields,
  finishedAt: Schema.NullOr(Schema.String),
  participants: Schema.Array(RoomParticipant),
  mediaState: Schema.NullOr(MediaState)
})
export type RoomDetail = typeof RoomDetail.Type

export class RoomNotFound extends HttpApiError.Problem<RoomNotFound>()("RoomNotFound", {
  type: "about:blank",
  status: 404,
  title: "Not Found"
}, { detail: Schema.String }) {}

export const roomNotFound = (name: string) => new RoomNotFound({ detail: `No room ${JSON.stringify(name)}` })
