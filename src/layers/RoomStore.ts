import { Context, Effect, Layer, Option, Result, Schema, type Scope, Stream } from "effect"
import type { ParticipantIdentity, RoomName } from "../schemas/ids.ts"
import { MediaState, ParticipantRecord, RoomEvent, RoomRecord } from "../schemas/rooms.ts"
import { StateStore, type StateStoreError } from "./StateStore.ts"

/**
 * Rooms and their participants as this service keeps them, in the state store under `rooms:`:
 * hash `index` (name -> RoomRecord), hash `p:<room>` (identity -> ParticipantRecord), hash
 * `m:<room>` (instance -> that instance's MediaState), the sync lease, webhook ids seen, and
 * channel `events`. Every write is stamped (`hsetIfNewer`): a change older than the last one
 * applied to the same room or participant changes nothing, removals included.
 */
export interface RoomStoreApi {
  readonly rooms: Effect.Effect<ReadonlyArray<RoomRecord>, StateStoreError>
  readonly room: (name: RoomName) => Effect.Effect<Option.Option<RoomRecord>, StateStoreError>
  readonly participants: (room: RoomName) => Effect.Effect<ReadonlyArray<ParticipantRecord>, StateStoreError>
  readonly participantCount: (room: RoomName) => Effect.Effect<number, StateStoreError>
  readonly participant: (room: RoomName, identity: ParticipantIdentity) => Effect.Effect<Option.Option<ParticipantRecord>, StateStoreError>
  /** true when applied (no later change to the room was). */
  readonly putRoom: (record: RoomRecord, stamp: number) => Effect.Effect<boolean, StateStoreError>
  /** Forgets the room altogether: record, participants, media state and stamps (stale cleanup). */
  readonly dropRoom: (name: RoomName) => Effect.Effect<void, StateStoreError>
  readonly putParticipant: (room: RoomName, record: ParticipantRecord, stamp: number) => Effect.Effect<boolean, StateStoreError>
  readonly removeParticipant: (room: RoomName, identity: ParticipantIdentity, stamp: number) => Effect.Effect<boolean, StateStoreError>
  /** Each instance's contribution to the room's media state. */
  readonly mediaStates: (room: RoomName) => Effect.Effect<ReadonlyArray<MediaState>, StateStoreError>
  readonly putMediaState: (room: RoomName, instance: string, state: MediaState | null) => Effect.Effect<void, StateStoreError>
  readonly publish: (event: RoomEvent) => Effect.Effect<void, StateStoreError>
  readonly events: Effect.Effect<Stream.Stream<RoomEvent>, StateStoreError, Scope.Scope>
  /** Cluster-wide sync counts (whichever instance synced), and when the last one ended. */
  readonly countSync: (result: "success" | "failure", at: number) => Effect.Effect<void, StateStoreError>
  readonly syncTotals: Effect.Effect<{ readonly successful: number; readonly failed: number; readonly lastSyncAt: Option.Option<number> }, StateStoreError>
  readonly holdSyncLease: (holder: string, ttlMs: number) => Effect.Effect<boolean, StateStoreError>
  readonly releaseSyncLease: (holder: string) => Effect.Effect<boolean, StateStoreError>
  readonly syncLeaseHolder: Effect.Effect<Option.Option<string>, StateStoreError>
  /** true the first time `id` is seen within `ttlMs`; `forgetWebhook` undoes it (the delivery was not applied). */
  readonly firstDelivery: (id: string, ttlMs: number) => Effect.Effect<boolean, StateStoreError>
  readonly forgetWebhook: (id: string) => Effect.Effect<void, StateStoreError>
}

const INDEX = "index"
const LEASE = "lease:sync"
const EVENTS = "events"
/** Room names are any text: encoded so no name can reach into another room's keys. */
const participantsKey = (room: string) => `p:${encodeURIComponent(room)}`
const mediaKey = (room: string) => `m:${encodeURIComponent(room)}`

const json = <S extends Schema.Top>(schema: S) => Schema.fromJsonString(schema)
const decoders = {
  room: Schema.decodeUnknownOption(json(RoomRecord)),
  participant: Schema.decodeUnknownOption(json(ParticipantRecord)),
  media: Schema.decodeUnknownOption(json(MediaState)),
  event: Schema.decodeUnknownOption(json(RoomEvent))
}

/** Values another version wrote in a shape this one cannot read are left out, not fatal. */
const decodeAll = <A>(values: Iterable<string>, decode: (text: string) => Option.Option<A>): Array<A> =>
  [...values].flatMap((text) => Option.toArray(decode(text)))

export const makeRoomStore = (root: StateStore["Service"]): RoomStoreApi => {
  const store = root.namespace("rooms")
  return {
    rooms: Effect.map(store.hgetAll(INDEX), (all) => decodeAll(Object.values(all), decoders.room)),
    room: (name) => Effect.map(store.hget(INDEX, name), Option.flatMap(decoders.room)),
    participants: (room) => Effect.map(store.hgetAll(participantsKey(room)), (all) => decodeAll(Object.values(all), decoders.participant)),
    participantCount: (room) => store.hlen(participantsKey(room)),
    participant: (room, identity) => Effect.map(store.hget(participantsKey(room), identity), Option.flatMap(decoders.participant)),
    putRoom: (record, stamp) => store.hsetIfNewer(INDEX, record.name, JSON.stringify(record), stamp),
    dropRoom: (name) =>
      Effect.all([
        store.hdel(INDEX, name),
        store.hdel(`${INDEX}:stamps`, name),
        store.del(participantsKey(name), `${participantsKey(name)}:stamps`, mediaKey(name))
      ], { discard: true }),
    putParticipant: (room, record, stamp) => store.hsetIfNewer(participantsKey(room), record.identity, JSON.stringify(record), stamp),
    removeParticipant: (room, identity, stamp) => store.hsetIfNewer(participantsKey(room), identity, null, stamp),
    mediaStates: (room) => Effect.map(store.hgetAll(mediaKey(room)), (all) => decodeAll(Object.values(all), decoders.media)),
    putMediaState: (room, instance, state) =>
      state === null ? Effect.asVoid(store.hdel(mediaKey(room), instance)) : store.hset(mediaKey(room), { [instance]: JSON.stringify(state) }),
    publish: (event) => Effect.asVoid(store.publish(EVENTS, JSON.stringify(event))),
    events: Effect.map(store.subscribe(EVENTS), (messages) => messages.pipe(Stream.filterMap((text) => Result.fromOption(decoders.event(text), () => text)))),
    countSync: (result, at) => Effect.all([store.incr(`stats:${result}`), store.set("stats:last_sync_at", String(at))], { discard: true }),
    syncTotals: Effect.map(
      Effect.all([store.get("stats:success"), store.get("stats:failure"), store.get("stats:last_sync_at")]),
      ([ok, failed, last]) => ({
        successful: Number(Option.getOrElse(ok, () => "0")),
        failed: Number(Option.getOrElse(failed, () => "0")),
        lastSyncAt: Option.map(last, Number)
      })
    ),
    holdSyncLease: (holder, ttlMs) => store.holdLease(LEASE, holder, ttlMs),
    releaseSyncLease: (holder) => store.releaseLease(LEASE, holder),
    syncLeaseHolder: store.get(LEASE),
    firstDelivery: (id, ttlMs) => store.setIfAbsent(`webhook:${id}`, "1", { ttlMs }),
    forgetWebhook: (id) => Effect.asVoid(store.del(`webhook:${id}`))
  }
}

export class RoomStore extends Context.Service<RoomStore, RoomStoreApi>()("auralink/RoomStore") {
  static readonly layer = Layer.effect(RoomStore, StateStore.use((store) => Effect.succeed(makeRoomStore(store))))
}
