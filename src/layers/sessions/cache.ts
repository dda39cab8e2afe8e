import { Effect, Option } from "effect"

/**
 * An in-memory read-through cache with a TTL and a size bound (oldest entry evicted first).
 * `invalidate` drops the key and bumps an epoch: a load that began before the bump does not
 * store its (possibly stale) result, so a read after a write of this process never sees the
 * state before that write.
 */
export const makeSessionCache = <A>(options: { readonly ttlMs: number; readonly max: number }) => {
  const entries = new Map<string, { readonly value: A; readonly until: number }>()
  let epoch = 0
  const enabled = options.ttlMs > 0 && options.max > 0

  const store = (key: string, value: A) => {
    if (!enabled) return
    entries.delete(key) // re-insert at the end: Map order is the eviction order
    entries.set(key, { value, until: Date.now() + options.ttlMs })
    if (entries.size > options.max) {
      const oldest = entries.keys().next()
      if (oldest.done !== true) entries.delete(oldest.value)
    }
  }

  const get = <E>(key: string, load: Effect.Effect<Option.Option<A>, E>): Effect.Effect<Option.Option<A>, E> =>
    Effect.suspend(() => {
      const hit = entries.get(key)
      if (hit !== undefined && hit.until > Date.now()) return Effect.succeed(Option.some(hit.value))
      if (hit !== undefined) entries.delete(key)
      const started = epoch
      return Effect.tap(load, (found) =>
        Effect.sync(() => {
          if (Option.isSome(found) && started === epoch) store(key, found.value)
        }))
    })

  /** Caches a value this process just created: no one can have changed what nobody else knew of. */
  const put = (key: string, value: A): Effect.Effect<void> => Effect.sync(() => store(key, value))

  const invalidate = (key: string): Effect.Effect<void> =>
    Effect.sync(() => {
      epoch += 1
      entries.delete(key)
    })

  return { get, put, invalidate, size: () => entries.size }
}
