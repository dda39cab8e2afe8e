import { Schema } from "effect"
import { AuraIdentity } from "../../schemas/auraid.ts"

/** A cached answer: the identity or null ("no such AuraID"), fresh until `freshUntil`, servable as stale until `staleUntil` (ms since epoch). */
export const CacheEntry = Schema.Struct({
  identity: Schema.NullOr(AuraIdentity),
  freshUntil: Schema.Number,
  staleUntil: Schema.Number
})
export type CacheEntry = typeof CacheEntry.Type

export const CacheEntryJson = Schema.fromJsonString(CacheEntry)

/** An in-process LRU of at most `capacity` entries (a Map keeps insertion order: re-inserting on read moves a key last). */
export const makeLru = <V>(capacity: number) => {
  const entries = new Map<string, V>()
  return {
    get: (key: string): V | undefined => {
      const value = entries.get(key)
      if (value !== undefined) {
        entries.delete(key)
        entries.set(key, value)
      }
      return value
    },
    set: (key: string, value: V): void => {
      entries.delete(key)
      entries.set(key, value)
      if (entries.size > capacity) {
        const oldest = entries.keys().next()
        if (oldest.done !== true) entries.delete(oldest.value)
      }
    },
    get size() {
      return entries.size
    }
  }
}

/** Hit and miss counts of one cache level, for /status. */
export const makeLevelStats = () => {
  let hits = 0
  let misses = 0
  return {
    record: (hit: boolean) => (hit ? (hits += 1) : (misses += 1)),
    snapshot: () => ({ hits, misses, hitRate: hits + misses === 0 ? null : Math.round((hits / (hits + misses)) * 10_000) / 10_000 })
  }
}
