import { Duration, Effect, Option } from "effect"
import { AuraIdResolver } from "../../layers/AuraIdResolver.ts"
import { RoomStore } from "../../layers/RoomStore.ts"
import { AURA_PREFIX, AURAID_RESOLVE_MAX } from "../../schemas/auraid.ts"
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

/** How long a room read waits for AuraID answers before it leaves them out. */
const AURAID_WAIT = Duration.millis(500)

/**
 * Display name and verified flag of the participants whose identity is an AuraID, by identity:
 * from the AuraID caches (or one upstream batch per 100 misses); empty when resolution is off or
 * cannot answer within AURAID_WAIT (a room read never fails for it).
 */
const auraIdFacts = (identities: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const resolver = yield* AuraIdResolver
    const auraIds = identities.filter((identity) => identity.startsWith(AURA_PREFIX))
    const facts = new Map<string, { readonly displayName: string; readonly verified: boolean }>()
    if (!resolver.enabled || auraIds.length === 0) return facts
    const chunks = Array.from({ length: Math.ceil(auraIds.length / AURAID_RESOLVE_MAX) }, (_, i) =>
      auraIds.slice(i * AURAID_RESOLVE_MAX, (i + 1) * AURAID_RESOLVE_MAX))
    const answers = yield* Effect.forEach(chunks, resolver.resolveMany, { concurrency: 4 }).pipe(
      Effect.timeoutOption(AURAID_WAIT),
      Effect.orElseSucceed(() =>
        Option.none()
      )
    )
    for (const answer of Option.getOrElse(answers, () => [])) {
      for (const [auraId, found] of answer) {
        if (Option.isSome(found)) facts.set(auraId, { displayName: found.value.identity.displayName, verified: found.value.identity.verified })
      }
    }
    return facts
  })

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
  const facts = yield* auraIdFacts(participants.map((p) => p.identity))
  const detail: RoomDetail = {
    ...summary(found.value, participants.length),
    finishedAt: found.value.finishedAt === null ? null : iso(found.value.finishedAt),
    participants: [...participants].sort((a, b) => a.joinedAt - b.joinedAt).map((p) => ({ ...p, joinedAt: iso(p.joinedAt), ...facts.get(p.identity) })),
    mediaState: Option.getOrNull(combineMediaStates(name, media))
  }
  return detail
})
