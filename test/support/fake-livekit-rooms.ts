// The state of the fake LiveKit server: rooms, their participants and tracks, as the real server reports them.
import { ParticipantInfo, ParticipantInfo_State, ParticipantPermission, Room, TrackInfo, TrackSource, TrackType } from "livekit-server-sdk"
import { guid } from "./fake-livekit-wire.ts"

export interface RoomSettings {
  readonly metadata?: string
  readonly emptyTimeout?: number
  readonly maxParticipants?: number
}

export interface ParticipantSettings {
  readonly name?: string
  readonly metadata?: string
}

export interface TrackSettings {
  readonly kind: "audio" | "video"
  readonly name?: string
  readonly mimeType?: string
  readonly muted?: boolean
  readonly width?: number
  readonly height?: number
}

export interface RoomEntry {
  readonly room: Room
  readonly participants: Map<string, ParticipantInfo>
}

/** What a webhook carries besides its name. */
export interface Subjects {
  readonly room?: Room
  readonly participant?: ParticipantInfo
  readonly track?: TrackInfo
}

/** A webhook the real server would send: its event name and subjects. */
export type Event = readonly [name: string, subjects: Subjects]

const seconds = (ms: number): bigint => BigInt(Math.floor(ms / 1000))

/** The event's subjects as they are now (events are signed later, after more changes maybe). */
export const snapshot = (entry: RoomEntry, participant: ParticipantInfo, track?: TrackInfo): Subjects => ({
  room: entry.room.clone(),
  participant: participant.clone(),
  ...(track === undefined ? {} : { track: track.clone() })
})

/** Rooms by name; every change keeps `numParticipants`, `numPublishers`, `isPublisher` and `version` current. */
export class RoomStore {
  private readonly byName = new Map<string, RoomEntry>()

  get(name: string): RoomEntry | undefined {
    return this.byName.get(name)
  }
  list(): ReadonlyArray<RoomEntry> {
    return [...this.byName.values()]
  }

  /** The room, or an Error naming it. */
  entry(name: string): RoomEntry {
    const entry = this.byName.get(name)
    if (entry === undefined) throw new Error(`fake LiveKit: no room ${name}`)
    return entry
  }

  member(entry: RoomEntry, identity: string): ParticipantInfo {
    const participant = entry.participants.get(identity)
    if (participant === undefined) throw new Error(`fake LiveKit: ${identity} is not in ${entry.room.name}`)
    return participant
  }

  create(name: string, options: RoomSettings): RoomEntry {
    const now = Date.now()
    const room = new Room({
      sid: guid("RM_"),
      name,
      metadata: options.metadata ?? "",
      emptyTimeout: options.emptyTimeout ?? 300,
      departureTimeout: 20,
      maxParticipants: options.maxParticipants ?? 0,
      creationTime: seconds(now),
      creationTimeMs: BigInt(now),
      turnPassword: guid(""),
      enabledCodecs: ["audio/opus", "audio/red", "video/VP8", "video/H264", "video/VP9", "video/AV1"].map((mime) => ({ mime }))
    })
    const entry: RoomEntry = { room, participants: new Map() }
    this.byName.set(name, entry)
    return entry
  }

  finish(entry: RoomEntry): Array<Event> {
    const events = [...entry.participants.values()].flatMap((p) => this.removeParticipant(entry, p))
    this.byName.delete(entry.room.name)
    events.push(["room_finished", { room: entry.room.clone() }])
    return events
  }

  addParticipant(entry: RoomEntry, identity: string, options: ParticipantSettings): ParticipantInfo {
    const now = Date.now()
    const participant = new ParticipantInfo({
      sid: guid("PA_"),
      identity,
      name: options.name ?? "",
      metadata: options.metadata ?? "",
      state: ParticipantInfo_State.ACTIVE,
      joinedAt: seconds(now),
      joinedAtMs: BigInt(now),
      version: 1,
      permission: new ParticipantPermission({ canSubscribe: true, canPublish: true, canPublishData: true }),
      region: "local"
    })
    entry.participants.set(identity, participant)
    this.recount(entry)
    return participant
  }

  /** Removes the participant; the events the real server sends for it (snapshots taken now). */
  removeParticipant(entry: RoomEntry, participant: ParticipantInfo): Array<Event> {
    entry.participants.delete(participant.identity)
    this.recount(entry)
    const left = participant.clone()
    left.state = ParticipantInfo_State.DISCONNECTED
    const room = entry.room.clone()
    const events: Array<Event> = left.tracks.map((track) => ["track_unpublished", { room, participant: left, track }])
    events.push(["participant_left", { room, participant: left }])
    return events
  }

  addTrack(entry: RoomEntry, participant: ParticipantInfo, options: TrackSettings): TrackInfo {
    const audio = options.kind === "audio"
    const track = new TrackInfo({
      sid: guid("TR_"),
      type: audio ? TrackType.AUDIO : TrackType.VIDEO,
      source: audio ? TrackSource.MICROPHONE : TrackSource.CAMERA,
      name: options.name ?? (audio ? "microphone" : "camera"),
      mimeType: options.mimeType ?? (audio ? "audio/opus" : "video/VP8"),
      muted: options.muted ?? false,
      width: audio ? 0 : options.width ?? 1280,
      height: audio ? 0 : options.height ?? 720
    })
    participant.tracks.push(track)
    this.changed(entry, participant)
    return track
  }

  changed(entry: RoomEntry, participant: ParticipantInfo): void {
    participant.version++
    participant.isPublisher = participant.tracks.length > 0
    this.recount(entry)
  }

  private recount(entry: RoomEntry): void {
    entry.room.numParticipants = entry.participants.size
    let publishers = 0
    for (const p of entry.participants.values()) if (p.isPublisher) publishers++
    entry.room.numPublishers = publishers
  }
}
