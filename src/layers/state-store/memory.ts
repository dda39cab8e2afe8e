import { Clock, Duration, Effect, Option, PubSub, Schedule, type Scope, Stream } from "effect"
import { type Backend, type StateStoreError, stampsKey, wrongType } from "./common.ts"

type Value =
  | { readonly kind: "string"; value: string }
  | { readonly kind: "hash"; readonly fields: Map<string, string> }
  | { readonly kind: "list"; items: Array<string> }

interface Entry {
  readonly value: Value
  /** Epoch ms from the Effect Clock (so TestClock drives expiry); undefined: no expiry. */
  expiresAt: number | undefined
}

interface Channel {
  readonly pubsub: PubSub.PubSub<string>
  subscribers: number
}

const SWEEP_EVERY = Duration.minutes(1)
const INTEGER = /^-?\d+$/

/** LRANGE's index rules: negative counts from the end, out of range clamps. */
const range = <A>(items: ReadonlyArray<A>, start: number, stop: number): Array<A> => {
  const from = Math.max(0, start < 0 ? items.length + start : start)
  const to = Math.min(items.length - 1, stop < 0 ? items.length + stop : stop)
  return from > to ? [] : items.slice(from, to + 1)
}

/**
 * The embedded backend: one Map per layer, expired entries dropped when touched and swept
 * once a minute. Every operation runs synchronously after reading the clock, so it is atomic.
 */
export const makeMemoryBackend: Effect.Effect<Backend, never, Scope.Scope> = Effect.gen(function*() {
  const entries = new Map<string, Entry>()
  const channels = new Map<string, Channel>()

  const live = (key: string, now: number): Entry | undefined => {
    const entry = entries.get(key)
    if (entry?.expiresAt !== undefined && entry.expiresAt <= now) {
      entries.delete(key)
      return undefined
    }
    return entry
  }
  const expiry = (now: number, ttlMs: number | undefined) => ttlMs === undefined ? undefined : now + ttlMs
  /** Runs `f` with the current time; `f` must not yield, which keeps each operation atomic. */
  const at = <A>(f: (now: number) => Effect.Effect<A, StateStoreError>) => Effect.flatMap(Clock.currentTimeMillis, f)
  /** The live entry's value if `select` accepts its kind (undefined when absent), else a WrongType failure. */
  const typed = <V>(
    operation: string,
    key: string,
    now: number,
    select: (value: Value) => V | undefined
  ): Effect.Effect<V | undefined, StateStoreError> => {
    const entry = live(key, now)
    if (entry === undefined) return Effect.succeed(undefined)
    const value = select(entry.value)
    return value === undefined ? Effect.fail(wrongType(operation)) : Effect.succeed(value)
  }
  const string = (v: Value) => v.kind === "string" ? v : undefined
  const hash = (v: Value) => v.kind === "hash" ? v : undefined
  const list = (v: Value) => v.kind === "list" ? v : undefined

  yield* Clock.currentTimeMillis.pipe(
    Effect.map((now) => entries.forEach((_, key) => live(key, now))),
    Effect.repeat(Schedule.spaced(SWEEP_EVERY)),
    Effect.forkScoped
  )

  return {
    get: (key) => at((now) => typed("get", key, now, string).pipe(Effect.map((v) => Option.fromNullishOr(v?.value)))),
    set: (key, value, options) =>
      at((now) => Effect.sync(() => void entries.set(key, { value: { kind: "string", value }, expiresAt: expiry(now, options?.ttlMs) }))),
    setIfAbsent: (key, value, options) =>
      at((now) =>
        Effect.sync(() => {
          if (live(key, now) !== undefined) return false
          entries.set(key, { value: { kind: "string", value }, expiresAt: expiry(now, options?.ttlMs) })
          return true
        })
      ),
    del: (keys) => at((now) => Effect.sync(() => keys.filter((key) => live(key, now) !== undefined && entries.delete(key)).length)),
    expire: (key, ttlMs) =>
      at((now) =>
        Effect.sync(() => {
          const entry = live(key, now)
          if (entry !== undefined) entry.expiresAt = now + ttlMs
          return entry !== undefined
        })
      ),
    ttl: (key) => at((now) => Effect.sync(() => Option.fromNullishOr(live(key, now)?.expiresAt).pipe(Option.map((t) => t - now)))),
    incr: (key, by = 1, options) =>
      at((now) =>
        Effect.flatMap(typed("incr", key, now, string), (found) => {
          if (found === undefined) {
            entries.set(key, { value: { kind: "string", value: String(by) }, expiresAt: expiry(now, options?.ttlMs) })
            return Effect.succeed(by)
          }
          const next = INTEGER.test(found.value) ? Number(found.value) + by : Number.NaN
          if (!Number.isSafeInteger(next)) return Effect.fail(wrongType("incr"))
          found.value = String(next)
          return Effect.succeed(next)
        })
      ),
    hget: (key, field) => at((now) => typed("hget", key, now, hash).pipe(Effect.map((h) => Option.fromNullishOr(h?.fields.get(field))))),
    hset: (key, fields) =>
      at((now) =>
        Effect.map(typed("hset", key, now, hash), (found) => {
          const target = found?.fields ?? new Map<string, string>()
          if (found === undefined) entries.set(key, { value: { kind: "hash", fields: target }, expiresAt: undefined })
          for (const [field, value] of Object.entries(fields)) target.set(field, value)
        })
      ),
    hgetAll: (key) => at((now) => typed("hgetAll", key, now, hash).pipe(Effect.map((h) => Object.fromEntries(h?.fields ?? [])))),
    hlen: (key) => at((now) => typed("hlen", key, now, hash).pipe(Effect.map((h) => h?.fields.size ?? 0))),
    hdel: (key, fields) =>
      at((now) =>
        Effect.map(typed("hdel", key, now, hash), (found) => {
          if (found === undefined) return 0
          const removed = fields.filter((field) => found.fields.delete(field)).length
          if (found.fields.size === 0) entries.delete(key) // as Redis: an empty hash is no key
          return removed
        })
      ),
    hsetIfNewer: (key, field, value, stamp) =>
      at((now) =>
        Effect.flatMap(Effect.all([typed("hsetIfNewer", key, now, hash), typed("hsetIfNewer", stampsKey(key), now, hash)]), ([data, stamps]) => {
          const previous = Number(stamps?.fields.get(field) ?? Number.NEGATIVE_INFINITY)
          if (previous > stamp) return Effect.succeed(false)
          const stampFields = stamps?.fields ?? new Map<string, string>()
          if (stamps === undefined) entries.set(stampsKey(key), { value: { kind: "hash", fields: stampFields }, expiresAt: undefined })
          stampFields.set(field, String(stamp))
          if (value !== null) {
            const target = data?.fields ?? new Map<string, string>()
            if (data === undefined) entries.set(key, { value: { kind: "hash", fields: target }, expiresAt: undefined })
            target.set(field, value)
          } else if (data !== undefined) {
            data.fields.delete(field)
            if (data.fields.size === 0) entries.delete(key)
          }
          return Effect.succeed(true)
        })
      ),
    holdLease: (key, holder, ttlMs) =>
      at((now) =>
        Effect.map(typed("holdLease", key, now, string), (found) => {
          if (found !== undefined && found.value !== holder) return false
          entries.set(key, { value: { kind: "string", value: holder }, expiresAt: now + ttlMs })
          return true
        })
      ),
    releaseLease: (key, holder) => at((now) => Effect.map(typed("releaseLease", key, now, string), (found) => found?.value === holder && entries.delete(key))),
    listPush: (key, value, { cap }) =>
      at((now) =>
        Effect.map(typed("listPush", key, now, list), (found) => {
          const target = found ?? { kind: "list" as const, items: [] }
          if (found === undefined) entries.set(key, { value: target, expiresAt: undefined })
          target.items = [...target.items, value].slice(-cap)
          return target.items.length
        })
      ),
    listRange: (key, start, stop) => at((now) => typed("listRange", key, now, list).pipe(Effect.map((l) => range(l?.items ?? [], start, stop)))),
    publish: (channel, message) =>
      Effect.suspend(() => {
        const target = channels.get(channel)
        // Counted like Redis counts connections: this process is one receiver, however many streams it runs.
        return target === undefined ? Effect.succeed(0) : PubSub.publish(target.pubsub, message).pipe(Effect.as(1))
      }),
    subscribe: (channel) =>
      Effect.gen(function*() {
        const target = yield* Effect.acquireRelease(
          // The PubSub is made before looking the channel up so that the look-up and the count are one step.
          Effect.flatMap(PubSub.unbounded<string>(), (fresh) =>
            Effect.sync(() => {
              const found = channels.get(channel) ?? { pubsub: fresh, subscribers: 0 }
              found.subscribers += 1
              channels.set(channel, found)
              return found
            })),
          (found) =>
            Effect.suspend(() => {
              found.subscribers -= 1
              if (found.subscribers > 0) return Effect.void
              channels.delete(channel)
              return PubSub.shutdown(found.pubsub)
            })
        )
        return Stream.fromSubscription(yield* PubSub.subscribe(target.pubsub))
      })
  }
})
