import { Option, Result, Schema } from "effect"
import { type ParticipantInfo, type Room, type TrackInfo, TrackSource, TrackType } from "livekit-server-sdk"
import { ParticipantIdentity, RoomName } from "../../schemas/ids.ts"
import type { ParticipantRecord, TrackRecord } from "../../schemas/rooms.ts"

/** A room as LiveKit lists it. */
export interface LiveKitRoom {
  readonly name: RoomName
  readonly sid: string
  readonly metadata: string
  /** Epoch ms. */
  readonly createdAt: number
  readonly numParticipants: number
}

const decodeRoomName = Schema.decodeUnknownOption(RoomName)
const decodeIdentity = Schema.decodeUnknownOption(ParticipantIdentity)

/** Seconds or ms (bigint) -> epoch ms, preferring the ms field LiveKit 1.5+ fills. */
const epochMs = (ms: bigint, seconds: bigint): number => ms > 0n ? Number(ms) : Number(seconds) * 1000

const kindOf = (type: TrackType): TrackRecord["kind"] => type === TrackType.VIDEO ? "video" : type === TrackType.DATA ? "data" : "audio"

export const toTrack = (track: TrackInfo): TrackRecord => ({
  sid: track.sid,
  kind: kindOf(track.type),
  source: (TrackSource[track.source] ?? "UNKNOWN").toLowerCase(),
  name: track.name,
  mimeType: track.mimeType,
  muted: track.muted
})

/** None for a room whose name this service cannot keep (empty, too long, control characters). */
export const toRoom = (room: Room): Option.Option<LiveKitRoom> =>
  Option.map(decodeRoomName(room.name), (name) => ({
    name,
    sid: room.sid,
    metadata: room.metadata,
    createdAt: epochMs(room.creationTimeMs, room.creationTime),
    numParticipants: room.numParticipants
  }))

/** None for an identity this service cannot keep. */
export const toParticipant = (info: ParticipantInfo): Option.Option<ParticipantRecord> =>
  Option.map(decodeIdentity(info.identity), (identity) => ({
    identity,
    sid: info.sid,
    name: info.name,
    metadata: info.metadata,
    joinedAt: epochMs(info.joinedAtMs, info.joinedAt),
    tracks: info.tracks.map(toTrack)
  }))

/** The ones that decode, and how many did not. */
export const keepDecoded = <A, B>(items: ReadonlyArray<A>, decode: (a: A) => Option.Option<B>) => {
  const kept = items.map(decode).flatMap((o) => Option.isSome(o) ? [o.value] : [])
  return { kept, skipped: items.length - kept.length }
}

export const roomNameOf = (name: string): Result.Result<RoomName, string> =>
  Option.match(decodeRoomName(name), { onNone: () => Result.fail(`unusable room name ${JSON.stringify(name.slice(0, 64))}`), onSome: Result.succeed })
