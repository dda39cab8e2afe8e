import { Effect, Exit, Option, Schema, Scope, Stream } from "effect"

/** Every StateStore failure: bad arguments (nothing changed), a key of another type, or the backend itself. */
export class StateStoreError extends Schema.TaggedError<StateStoreError>()("StateStoreError", {
  operation: Schema.String,
  reason: Schema.Literals(["InvalidArgument", "WrongType", "Backend"]),
  detail: Schema.String
}) {
  override get message(): string {
    return `state store ${this.operation}: ${this.detail}`
  }
}

export interface TtlOptions {
  /** Time to live in whole milliseconds (> 0); without it the key does not expire. */
  readonly ttlMs?: number
}

/** Keys and channels are relative to `prefix`; `namespace` gives a view one level deeper. */
export interface StateStoreApi {
  readonly prefix: string
  readonly namespace: (name: string) => StateStoreApi
  readonly get: (key: string) => Effect.Effect<Option.Option<string>, StateStoreError>
  readonly set: (key: string, value: string, options?: TtlOptions) => Effect.Effect<void, StateStoreError>
  /** true when the key was absent and is now set. */
  readonly setIfAbsent: (key: string, value: string, options?: TtlOptions) => Effect.Effect<boolean, StateStoreError>
  /** How many of the keys existed. */
  readonly del: (...keys: ReadonlyArray<string>) => Effect.Effect<number, StateStoreError>
  /** false when the key does not exist. */
  readonly expire: (key: string, ttlMs: number) => Effect.Effect<boolean, StateStoreError>
  /** Remaining milliseconds; None when the key is absent or does not expire. */
  readonly ttl: (key: string) => Effect.Effect<Option.Option<number>, StateStoreError>
  /** Atomic add; `ttlMs` applies only when this call creates the key (a fixed-window counter). */
  readonly incr: (key: string, by?: number, options?: TtlOptions) => Effect.Effect<number, StateStoreError>
  readonly hget: (key: string, field: string) => Effect.Effect<Option.Option<string>, StateStoreError>
  readonly hset: (key: string, fields: Readonly<Record<string, string>>) => Effect.Effect<void, StateStoreError>
  readonly hgetAll: (key: string) => Effect.Effect<Record<string, string>, StateStoreError>
  /** How many fields the hash has (0 when absent). */
  readonly hlen: (key: string) => Effect.Effect<number, StateStoreError>
  /** How many of the fields existed. */
  readonly hdel: (key: string, ...fields: ReadonlyArray<string>) => Effect.Effect<number, StateStoreError>
  /**
   * Last-writer-by-time for one hash field: sets `field` to `value` (or removes it, for `null`)
   * only if no change with a later `stamp` was applied to it, atomically. The stamps are kept in
   * the hash `<key>:stamps`, also for removed fields, so a late older write cannot bring one back.
   * true when applied.
   */
  readonly hsetIfNewer: (key: string, field: string, value: string | null, stamp: number) => Effect.Effect<boolean, StateStoreError>
  /**
   * A lease: takes `key` for `holder` when it is free (or expired), or extends it when `holder`
   * already has it; true when `holder` holds it for the next `ttlMs`.
   */
  readonly holdLease: (key: string, holder: string, ttlMs: number) => Effect.Effect<boolean, StateStoreError>
  /** Gives the lease up if `holder` has it; true when it did. */
  readonly releaseLease: (key: string, holder: string) => Effect.Effect<boolean, StateStoreError>
  /** Appends and keeps only the newest `cap` items, atomically; returns the list's length. */
  readonly listPush: (key: string, value: string, options: { readonly cap: number }) => Effect.Effect<number, StateStoreError>
  /** Inclusive range, oldest first; negative indexes count from the end (-1 is the newest). */
  readonly listRange: (key: string, start: number, stop: number) => Effect.Effect<ReadonlyArray<string>, StateStoreError>
  /**
   * How many receivers got the message, counted as Redis does: per subscribed connection, not
   * per stream (each service instance counts once; the in-memory store answers 0 or 1).
   */
  readonly publish: (channel: string, message: string) => Effect.Effect<number, StateStoreError>
  /**
   * Subscribed once this succeeds (so nothing published afterwards is missed); the stream
   * yields messages in order. Unsubscribes when the stream ends or is interrupted, or else
   * (a stream never run) when the scope closes.
   */
  readonly subscribe: (channel: string) => Effect.Effect<Stream.Stream<string>, StateStoreError, Scope.Scope>
}

/** What an implementation provides: full keys, arguments already checked. */
export type Backend = Omit<StateStoreApi, "prefix" | "namespace" | "del" | "hdel"> & {
  readonly del: (keys: ReadonlyArray<string>) => Effect.Effect<number, StateStoreError>
  readonly hdel: (key: string, fields: ReadonlyArray<string>) => Effect.Effect<number, StateStoreError>
}

export const DEFAULT_PREFIX = "auralink:"

/** Where `hsetIfNewer` keeps a hash's stamps. */
export const stampsKey = (key: string) => `${key}:stamps`

export const wrongType = (operation: string) => new StateStoreError({ operation, reason: "WrongType", detail: "the key holds another kind of value" })

type Check = readonly [ok: boolean, problem: string]

const checks = (operation: string, ...all: ReadonlyArray<Check>): Effect.Effect<void, StateStoreError> => {
  const failed = all.find(([ok]) => !ok)
  return failed === undefined
    ? Effect.void
    : Effect.fail(new StateStoreError({ operation, reason: "InvalidArgument", detail: failed[1] }))
}
const nonEmpty = (what: string, value: string): Check => [value.length > 0, `${what} must be a non-empty string`]
const integer = (what: string, value: number): Check => [Number.isSafeInteger(value), `${what} must be a whole number, got ${value}`]
const positive = (what: string, value: number): Check => [Number.isSafeInteger(value) && value > 0, `${what} must be a whole number > 0, got ${value}`]
const ttl = (value: number | undefined): Check => value === undefined ? [true, ""] : positive("ttlMs", value)

/** Checks arguments (a bad call fails before touching the backend) and applies the prefix. */
export const makeStateStore = (backend: Backend, prefix: string): StateStoreApi => {
  const k = (key: string) => prefix + key
  const guarded = <A, R>(check: Effect.Effect<void, StateStoreError>, run: () => Effect.Effect<A, StateStoreError, R>) =>
    Effect.andThen(check, Effect.suspend(run))
  return {
    prefix,
    namespace: (name) => makeStateStore(backend, `${prefix}${name}:`),
    get: (key) => guarded(checks("get", nonEmpty("key", key)), () => backend.get(k(key))),
    set: (key, value, options = {}) => guarded(checks("set", nonEmpty("key", key), ttl(options.ttlMs)), () => backend.set(k(key), value, options)),
    setIfAbsent: (key, value, options = {}) =>
      guarded(checks("setIfAbsent", nonEmpty("key", key), ttl(options.ttlMs)), () => backend.setIfAbsent(k(key), value, options)),
    del: (...keys) =>
      guarded(checks("del", ...keys.map((key) => nonEmpty("key", key))), () => keys.length === 0 ? Effect.succeed(0) : backend.del(keys.map(k))),
    expire: (key, ttlMs) => guarded(checks("expire", nonEmpty("key", key), positive("ttlMs", ttlMs)), () => backend.expire(k(key), ttlMs)),
    ttl: (key) => guarded(checks("ttl", nonEmpty("key", key)), () => backend.ttl(k(key))),
    incr: (key, by = 1, options = {}) =>
      guarded(checks("incr", nonEmpty("key", key), integer("by", by), ttl(options.ttlMs)), () => backend.incr(k(key), by, options)),
    hget: (key, field) => guarded(checks("hget", nonEmpty("key", key), nonEmpty("field", field)), () => backend.hget(k(key), field)),
    hset: (key, fields) =>
      guarded(
        checks("hset", nonEmpty("key", key), ...Object.keys(fields).map((f) => nonEmpty("field", f))),
        () => Object.keys(fields).length === 0 ? Effect.void : backend.hset(k(key), fields)
      ),
    hgetAll: (key) => guarded(checks("hgetAll", nonEmpty("key", key)), () => backend.hgetAll(k(key))),
    hlen: (key) => guarded(checks("hlen", nonEmpty("key", key)), () => backend.hlen(k(key))),
    hdel: (key, ...fields) =>
      guarded(
        checks("hdel", nonEmpty("key", key), ...fields.map((f) => nonEmpty("field", f))),
        () => fields.length === 0 ? Effect.succeed(0) : backend.hdel(k(key), fields)
      ),
    hsetIfNewer: (key, field, value, stamp) =>
      guarded(
        checks("hsetIfNewer", nonEmpty("key", key), nonEmpty("field", field), [Number.isFinite(stamp), `stamp must be a finite number, got ${stamp}`]),
        () => backend.hsetIfNewer(k(key), field, value, stamp)
      ),
    holdLease: (key, holder, ttlMs) =>
      guarded(checks("holdLease", nonEmpty("key", key), nonEmpty("holder", holder), positive("ttlMs", ttlMs)), () => backend.holdLease(k(key), holder, ttlMs)),
    releaseLease: (key, holder) =>
      guarded(checks("releaseLease", nonEmpty("key", key), nonEmpty("holder", holder)), () => backend.releaseLease(k(key), holder)),
    listPush: (key, value, { cap }) => guarded(checks("listPush", nonEmpty("key", key), positive("cap", cap)), () => backend.listPush(k(key), value, { cap })),
    listRange: (key, start, stop) =>
      guarded(checks("listRange", nonEmpty("key", key), integer("start", start), integer("stop", stop)), () => backend.listRange(k(key), start, stop)),
    publish: (channel, message) => guarded(checks("publish", nonEmpty("channel", channel)), () => backend.publish(k(channel), message)),
    subscribe: (channel) =>
      guarded(checks("subscribe", nonEmpty("channel", channel)), () =>
        Effect.gen(function*() {
          // A child of the caller's scope, so the stream ending can unsubscribe before the scope closes.
          const scope = yield* Scope.fork(yield* Scope.Scope)
          const stream = yield* backend.subscribe(k(channel)).pipe(
            Scope.provide(scope),
            Effect.onError(() => Scope.close(scope, Exit.void))
          )
          return stream.pipe(Stream.ensuring(Scope.close(scope, Exit.void)))
        }))
  }
}
