import type { LiveKitRoom } from "../../layers/LiveKit.ts"
import type { ParticipantIdentity, RoomName } from "../../schemas/ids.ts"
import type { ParticipantRecord, RoomEvent, RoomEventType, RoomRecord, TrackRecord } from "../../schemas/rooms.ts"

/** One write to the room store and the events to publish if it applies. */
export type Change =
  | { readonly kind: "room"; readonly record: RoomRecord; readonly events: ReadonlyArray<RoomEvent> }
  | { readonly kind: "participant"; readonly room: RoomName; readonly record: ParticipantRecord; readonly events: ReadonlyArray<RoomEvent> }
  | { readonly kind: "leave"; readonly room: RoomName; readonly identity: ParticipantIdentity; readonly events: ReadonlyArray<RoomEvent> }

export interface StoredRoom {
  readonly room: RoomRecord
  readonly participants: ReadonlyArray<ParticipantRecord>
}

export interface ListedRoom {
  readonly room: LiveKitRoom
  /** None: its participants could not be listed this time (left as they are). */
  readonly participants: ReadonlyArray<ParticipantRecord> | undefined
}

const event = (type: RoomEventType, room: RoomName, at: number, extra: { identity?: ParticipantIdentity; trackSid?: string } = {}): RoomEvent => ({
  type,
  room,
  source: "sync",
  at,
  ...extra
})

const sameTrack = (a: TrackRecord, b: TrackRecord) =>
  a.sid === b.sid && a.kind === b.kind && a.source === b.source && a.name === b.name && a.mimeType === b.mimeType && a.muted === b.muted

const sameParticipant = (a: ParticipantRecord, b: ParticipantRecord) =>
  a.sid === b.sid && a.name === b.name && a.metadata === b.metadata && a.joinedAt === b.joinedAt &&
  a.tracks.length === b.tracks.length && a.tracks.every((t, i) => b.tracks[i] !== undefined && sameTrack(t, b.tracks[i]))

/** Track events between what was kept and what LiveKit lists now. */
export const trackEvents = (
  room: RoomName,
  identity: ParticipantIdentity,
  before: ReadonlyArray<TrackRecord>,
  after: ReadonlyArray<TrackRecord>,
  at: number
) => {
  const had = new Set(before.map((t) => t.sid))
  const has = new Set(after.map((t) => t.sid))
  return [
    ...after.filter((t) => !had.has(t.sid)).map((t) => event("track_published", room, at, { identity, trackSid: t.sid })),
    ...before.filter((t) => !has.has(t.sid)).map((t) => event("track_unpublished", room, at, { identity, trackSid: t.sid }))
  ]
}

const participantChanges = (room: RoomName, kept: ReadonlyArray<ParticipantRecord>, listed: ReadonlyArray<ParticipantRecord>, at: number): Array<Change> => {
  const byIdentity = new Map(kept.map((p) => [p.identity, p]))
  const listedIds = new Set(listed.map((p) => p.identity))
  const changes: Array<Change> = []
  for (const now of listed) {
    const before = byIdentity.get(now.identity)
    if (before === undefined) {
      const events = [event("participant_joined", room, at, { identity: now.identity }), ...trackEvents(room, now.identity, [], now.tracks, at)]
      changes.push({ kind: "participant", room, record: now, events })
    } else if (!sameParticipant(before, now)) {
      changes.push({ kind: "participant", room, record: now, events: trackEvents(room, now.identity, before.tracks, now.tracks, at) })
    }
  }
  for (const before of kept) {
    if (!listedIds.has(before.identity)) {
      changes.push({ kind: "leave", room, identity: before.identity, events: [event("participant_left", room, at, { identity: before.identity })] })
    }
  }
  return changes
}

/**
 * What one sync changes: LiveKit's list is the truth for which rooms exist, who is in them and
 * what they publish. Rooms it no longer lists become `finished` (their participants leave);
 * stale cleanup forgets them later. Everything else this service keeps about participants
 * (capabilities, QoS, presence) and rooms (media state) is its own and never read from here.
 */
export const reconcile = (stored: ReadonlyMap<RoomName, StoredRoom>, listed: ReadonlyArray<ListedRoom>, at: number): Array<Change> => {
  const changes: Array<Change> = []
  const listedNames = new Set(listed.map((l) => l.room.name))
  for (const { participants, room } of listed) {
    const kept = stored.get(room.name)
    const record: RoomRecord = {
      name: room.name,
      sid: room.sid,
      state: "active",
      metadata: room.metadata,
      createdAt: room.createdAt,
      finishedAt: null,
      updatedAt: at
    }
    const started = kept === undefined || kept.room.state === "finished" || kept.room.sid !== room.sid
    if (started) changes.push({ kind: "room", record, events: [event("room_started", room.name, at)] })
    else if (kept.room.metadata !== room.metadata || kept.room.createdAt !== room.createdAt) changes.push({ kind: "room", record, events: [] })
    if (participants !== undefined) changes.push(...participantChanges(room.name, kept?.participants ?? [], participants, at))
  }
  for (const [name, kept] of stored) {
    if (listedNames.has(name) || kept.room.state === "finished") continue
    changes.push({ kind: "room", record: { ...kept.room, state: "finished", finishedAt: at, updatedAt: at }, events: [event("room_finished", name, at)] })
    changes.push(...participantChanges(name, kept.participants, [], at))
  }
  return changes
}
