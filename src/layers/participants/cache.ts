import { Effect } from "effect"

export interface CacheStats {
  readonly cached: number
  readonly hits: number
  readonly misses: number
}

/**
 * A read-through LRU cache of at most `max` entries (0: no caching). `invalidate` drops the key and
 * any load of it in flight: a load that began before a write does not store what it read, so no
 * instance keeps a copy older than the last invalidation it received.
 */
export const makeLruCache = <A>(max: number, onRead: (hit: boolean) => void) => {
  const entries = new Map<string, A>()
  const loading = new Map<string, object>()
  let hits = 0
  let misses = 0

  const store = (key: string, value: A) => {
    entries.set(key, value)
    if (entries.size > max) {
      const oldest = entries.keys().next()
      if (oldest.done !== true) entries.delete(oldest.value)
    }
  }

  const get = <E, R>(key: string, load: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.suspend(() => {
      const hit = entries.get(key)
      if (hit !== undefined) {
        hits += 1
        onRead(true)
        // Re-inserted at the end: Map order is the eviction order.
        entries.delete(key)
        entries.set(key, hit)
        return Effect.succeed(hit)
      }
      misses += 1
      onRead(false)
      if (max === 0) return load
      const token = {}
      loading.set(key, token)
      const current = () => loading.get(key) === token
      return load.pipe(
        Effect.tap((value) =>
          Effect.sync(() => {
            if (current()) store(key, value)
          })
        ),
        Effect.ensuring(Effect.sync(() => {
          if (current()) loading.delete(key)
        }))
      )
    })

  const invalidate = (key: string): Effect.Effect<void> =>
    Effect.sync(() => {
      entries.delete(key)
      loading.delete(key)
    })

  const stats = (): CacheStats => ({ cached: entries.size, hits, misses })

  return { get, invalidate, stats }
}
