import { Context, Effect, Layer, Option, Schema } from "effect"
import { InstanceRecord, type InstanceView } from "../schemas/cluster.ts"
import { AppConfig } from "./Config.ts"
import { Instance } from "./Instance.ts"
import { type StateStoreError, StateStore } from "./StateStore.ts"

const RecordJson = Schema.fromJsonString(InstanceRecord)
const decodeRecord = Schema.decodeUnknownOption(RecordJson)
const encodeRecord = Schema.encodeSync(RecordJson)

const originOf = (url: string): ReadonlyArray<string> => {
  try {
    return [new URL(url).origin]
  } catch {
    return []
  }
}

/** Registrations live this long after the last heartbeat (the rest of INSTANCE_TTL_MS is for noticing, see the membership program). */
export const registrationTtlMs = (instanceTtlMs: number) => Math.round(instanceTtlMs * 2 / 3)

/**
 * The instances sharing this Redis, each under `cluster:instance:<id>` (expiring unless renewed)
 * and, with its last record, in the hash `cluster:members` (so an expired one is still listed, as
 * lost, until forgotten).
 * Facts and operations only: the membership program decides when to heartbeat and what a lost
 * instance means.
 */
export class Cluster extends Context.Service<Cluster, {
  /** This instance's id (its sessions' owner) and the URL clients reach it on. */
  readonly self: { readonly id: string; readonly publicUrl: string }
  /** The registry is shared with other processes (Redis); false with the in-memory store (one instance). */
  readonly shared: boolean
  /** Registers or renews this instance's record for the registration TTL. */
  readonly publish: (record: InstanceRecord) => Effect.Effect<void, StateStoreError>
  /** Every member, alive or lost. */
  readonly instances: Effect.Effect<ReadonlyArray<InstanceView>, StateStoreError>
  /** An alive instance's record. */
  readonly find: (id: string) => Effect.Effect<Option.Option<InstanceRecord>, StateStoreError>
  /** The origins of the other alive instances as last listed (a browser page may be redirected there). */
  readonly peerOrigins: () => ReadonlyArray<string>
  /** Removes an instance (a lost one once its sessions are ended, or this one when it stops). */
  readonly forget: (id: string) => Effect.Effect<void, StateStoreError>
}>()("auralink/Cluster") {
  static readonly layer = Layer.effect(
    Cluster,
    Effect.gen(function*() {
      const config = yield* AppConfig
      const { id } = yield* Instance
      const store = (yield* StateStore).namespace("cluster")
      const ttlMs = registrationTtlMs(config.cluster.instanceTtlMs)
      const publicUrl = Option.getOrElse(config.dashboard.publicUrl, () => `http://127.0.0.1:${config.http.port}`).replace(/\/+$/, "")
      const key = (instance: string) => `instance:${instance}`
      let peers: ReadonlyArray<string> = []
      const find = (instance: string) => Effect.map(store.get(key(instance)), Option.flatMap(decodeRecord))
      return {
        self: { id, publicUrl },
        shared: Option.isSome(config.redis.url),
        publish: (record) =>
          Effect.andThen(store.set(key(record.id), encodeRecord(record), { ttlMs }), store.hset("members", { [record.id]: encodeRecord(record) })),
        instances: Effect.gen(function*() {
          const members = yield* store.hgetAll("members")
          const views = yield* Effect.forEach(
            Object.entries(members),
            ([member, last]) =>
              Effect.map(find(member), (alive) =>
                Option.map(Option.orElse(alive, () => decodeRecord(last)), (record): InstanceView => ({
                  ...record,
                  state: Option.isSome(alive) ? "alive" : "lost",
                  self: member === id
                }))),
            { concurrency: 8 }
          )
          const listed = views.flatMap(Option.toArray)
          peers = listed.filter((i) => i.state === "alive" && !i.self).flatMap((i) => originOf(i.publicUrl))
          return listed
        }),
        peerOrigins: () => peers,
        find,
        forget: (instance) => Effect.andThen(store.del(key(instance)), store.hdel("members", instance)).pipe(Effect.asVoid)
      }
    })
  )
}
