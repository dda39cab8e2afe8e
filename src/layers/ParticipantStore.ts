import { Context, Effect, Layer, Option, Schema, Stream } from "effect"
import type { MediaCapabilities, PresenceStatus, QosSample } from "../schemas/participants.ts"
import { AppConfig } from "./Config.ts"
import { makeLruCache } from "./participants/cache.ts"
import { readsCounter, statusSection } from "./participants/observe.ts"
import { INVALIDATE_CHANNEL, type PresenceRecord, QosJson, qosKey, StateHash, stateKey } from "./participants/records.ts"
import { StateStore, type StateStoreError } from "./StateStore.ts"

export type { PresenceRecord } from "./participants/records.ts"

/** A stored value that does not decode (`Corrupt`), or a value refused before it was written (`InvalidValue`). */
export class ParticipantStoreError extends Schema.TaggedError<ParticipantStoreError>()("ParticipantStoreError", {
  operation: Schema.String,
  identity: Schema.String,
  reason: Schema.Literals(["Corrupt", "InvalidValue"]),
  detail: Schema.String
}) {
  override get message(): string {
    return `participant store ${this.operation} (${this.identity}): ${this.detail}`
  }
}

/** What is stored of one participant; every field None when nothing is. Times are ISO 8601. */
export interface StoredParticipant {
  readonly capabilities: Option.Option<MediaCapabilities>
  readonly latestQos: Option.Option<QosSample>
  readonly presence: Option.Option<PresenceRecord>
  readonly lastSeenAt: Option.Option<string>
  /** The last change of capabilities, QoS or presence. */
  readonly updatedAt: Option.Option<string>
}

export type ParticipantStoreFailure = StateStoreError | ParticipantStoreError

/** Every write takes its time (`at`, ms since the epoch) from the caller and marks the participant heard-from then. */
export interface ParticipantStoreApi {
  /** From the local cache when it holds the identity, else from the store (then cached). */
  readonly read: (identity: string) => Effect.Effect<StoredParticipant, ParticipantStoreFailure>
  /** Up to `limit` samples, newest first (always from the store). */
  readonly qosHistory: (identity: string, limit: number) => Effect.Effect<ReadonlyArray<QosSample>, ParticipantStoreFailure>
  readonly setCapabilities: (identity: string, capabilities: MediaCapabilities, at: number) => Effect.Effect<void, ParticipantStoreFailure>
  /** Appends to the history, keeping the newest QOS_HISTORY_CAP samples. */
  readonly appendQos: (identity: string, sample: QosSample, at: number) => Effect.Effect<void, ParticipantStoreFailure>
  readonly setPresence: (identity: string, status: PresenceStatus, at: number) => Effect.Effect<void, ParticipantStoreFailure>
  /** Marks the participant heard-from at `at`, changing nothing else. */
  readonly touch: (identity: string, at: number) => Effect.Effect<void, ParticipantStoreFailure>
}

const iso = (at: number) => new Date(at).toISOString()

/**
 * Participant state (capabilities, QoS history, presence, last seen) in the StateStore under
 * `participants:`, behind a local LRU cache of PARTICIPANT_CACHE_SIZE identities. Every write
 * drops this instance's copy and publishes the identity on `participants:invalidate`, on which
 * every instance (this one included) drops its copy. A value is decoded when read: a corrupt one
 * is a `ParticipantStoreError`.
 */
export class ParticipantStore extends Context.Service<ParticipantStore, ParticipantStoreApi>()("auralink/ParticipantStore") {
  static readonly layer = Layer.effect(
    ParticipantStore,
    Effect.gen(function*() {
      const store = (yield* StateStore).namespace("participants")
      const { participants: settings } = yield* AppConfig
      const cache = makeLruCache<StoredParticipant>(settings.cacheSize, yield* readsCounter)
      yield* statusSection(cache.stats)

      // Subscribed before the layer is up, so no write published afterwards is missed.
      const invalidations = yield* store.subscribe(INVALIDATE_CHANNEL)
      yield* Effect.forkScoped(Stream.runForEach(invalidations, cache.invalidate))

      const corrupt = (operation: string, identity: string) => (error: Schema.SchemaError) =>
        new ParticipantStoreError({ operation, identity, reason: "Corrupt", detail: error.message })
      const invalid = (operation: string, identity: string) => (error: Schema.SchemaError) =>
        new ParticipantStoreError({ operation, identity, reason: "InvalidValue", detail: error.message })

      const decodeHash = (identity: string, fields: Record<string, string>) =>
        Schema.decodeUnknownEffect(StateHash)(fields).pipe(Effect.mapError(corrupt("read", identity)))
      const decodeSamples = (identity: string, operation: string, items: ReadonlyArray<string>) =>
        Effect.forEach(items, (item) => Schema.decodeUnknownEffect(QosJson)(item)).pipe(Effect.mapError(corrupt(operation, identity)))

      const load = (identity: string) =>
        Effect.gen(function*() {
          const [fields, newest] = yield* Effect.all([store.hgetAll(stateKey(identity)), store.listRange(qosKey(identity), -1, -1)], {
            concurrency: 2
          })
          const hash = yield* decodeHash(identity, fields)
          const [latest] = yield* decodeSamples(identity, "read", newest)
          return {
            capabilities: Option.fromUndefinedOr(hash.capabilities),
            latestQos: Option.fromUndefinedOr(latest),
            presence: Option.fromUndefinedOr(hash.presence),
            lastSeenAt: Option.fromUndefinedOr(hash.lastSeenAt),
            updatedAt: Option.fromUndefinedOr(hash.updatedAt)
          }
        })

      /** Runs a write, drops the local copy whatever the outcome, then tells every instance. */
      const write = <E>(identity: string, effect: Effect.Effect<void, E>) =>
        effect.pipe(
          Effect.ensuring(cache.invalidate(identity)),
          // A failed publish fails the write: the caller retries, rather than other instances keeping a stale copy.
          Effect.andThen(store.publish(INVALIDATE_CHANNEL, identity)),
          Effect.asVoid
        )

      /** Sets hash fields (encoded, so checked, first), heard-from `at` included. */
      const setFields = (operation: string, identity: string, at: number, fields: StateHash) =>
        Schema.encodeEffect(StateHash)({ ...fields, lastSeenAt: iso(at) }).pipe(
          Effect.mapError(invalid(operation, identity)),
          Effect.flatMap((encoded) => store.hset(stateKey(identity), encoded))
        )

      return {
        read: (identity) => cache.get(identity, load(identity)),
        qosHistory: (identity, limit) =>
          limit < 1 ? Effect.succeed([]) : store.listRange(qosKey(identity), -limit, -1).pipe(
            Effect.flatMap((items) => decodeSamples(identity, "qosHistory", items)),
            Effect.map((samples) => samples.toReversed())
          ),
        setCapabilities: (identity, capabilities, at) => write(identity, setFields("setCapabilities", identity, at, { capabilities, updatedAt: iso(at) })),
        appendQos: (identity, sample, at) =>
          write(
            identity,
            Schema.encodeEffect(QosJson)(sample).pipe(
              Effect.mapError(invalid("appendQos", identity)),
              Effect.flatMap((item) => store.listPush(qosKey(identity), item, { cap: settings.qosHistoryCap })),
              Effect.andThen(setFields("appendQos", identity, at, { updatedAt: iso(at) }))
            )
          ),
        setPresence: (identity, setStatus, at) =>
          write(identity, setFields("setPresence", identity, at, { presence: { setStatus, updatedAt: iso(at) }, updatedAt: iso(at) })),
        touch: (identity, at) => write(identity, setFields("touch", identity, at, {}))
      }
    })
  )
}
