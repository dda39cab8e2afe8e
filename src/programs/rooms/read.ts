import { Effect, Option } from "effect"
import { RoomStore } from "../../layers/RoomStore.ts"
import type { RoomName } from "../../schemas/ids.ts"
import { type MediaState, type RoomDetail, roomNotFound, type RoomRecord, type RoomSummary } from "../../schemas/rooms.ts"

const iso = (ms: number) => new Date(ms).toISOString()

const summary = (room: RoomRecord, numParticipants: number): RoomSummary => ({
  name: room.name,
  sid: room.sid,
  state: room.state,
  metadata: room.metadata,
  createdAt: iso(room.createdAt),
  numParticipants,
  updatedAt: iso(room.updatedAt)
})

/** The instances' contributions summed into one MediaState (None when no instance has media in the room). */
export const combineMediaStates = (room: RoomName, states: ReadonlyArray<MediaState>): Option.Option<MediaState> => {
  if (states.length === 0) return Option.none()
  const levels: ReadonlyArray<MediaState["qualityLevel"]> = ["none", "audio", "LD", "SD", "HD", "FHD"]
  const best = states.reduce((a, s) => levels.indexOf(s.qualityLevel) > levels.indexOf(a) ? s.qualityLevel : a, states[0]?.qualityLevel ?? "none")
  const weight = states.reduce((n, s) => n + s.totalBandwidthKbps, 0)
  return Option.some({
    conferenceId: room,
    activeStreams: states.reduce((n, s) => n + s.activeStreams, 0),
    totalBandwidthKbps: Math.round(weight),
    qualityLevel: best,
    aicEnabled: states.some((s) => s.aicEnabled),
    // Weighted by bandwidth: the ratio of the whole room's traffic.
    compressionRatio: weight === 0 ? 1 : states.reduce((n, s) => n + s.compressionRatio * s.totalBandwidthKbps, 0) / weight,
    sessions: states.reduce((n, s) => n + s.sessions, 0),
    updatedAt: states.map((s) => s.updatedAt).sort().at(-1) ?? iso(0)
  })
}

/** Every room kept (active, and finished ones until stale cleanup), by name. */
export const listRooms = Effect.fn("rooms.list")(function*() {
  const store = yield* RoomStore
  const rooms = [...yield* store.rooms].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  const counts = yield* Effect.forEach(rooms, (r) => store.participantCount(r.name), { concurrency: 16 })
  return { rooms: rooms.map((r, i) => summary(r, counts[i] ?? 0)) }
})

/** One room with its participants and the media state of this service's sessions in it. */
export const getRoom = Effect.fn("rooms.get")(function*(name: RoomName) {
  const store = yield* RoomStore
  const found = yield* store.room(name)
  if (Option.isNone(found)) return yield* roomNotFound(name)
  const [participants, media] = yield* Effect.all([store.participants(name), store.mediaStates(name)], { concurrency: 2 })
  const detail: RoomDetail = {
    ...summary(found.value, participants.length),
    finishedAt: found.value.finishedAt === null ? null : iso(found.value.finishedAt),
    participants: [...participants].sort((a, b) => a.joinedAt - b.joinedAt).map((p) => ({ ...p, joinedAt: iso(p.joinedAt) })),
    mediaState: Option.getOrNull(combineMediaStates(name, media))
  }
  return detail
})
