import { Clock, Context, Deferred, Effect, Layer, Option, Schema } from "effect"
import { Counter } from "prom-client"
import type { AuraIdentity } from "../schemas/auraid.ts"
import { CacheEntryJson, type CacheEntry, makeLevelStats, makeLru } from "./auraid/cache.ts"
import { CommunicationServiceUnavailable, makeCommunicationClient } from "./auraid/client.ts"
import { AppConfig } from "./Config.ts"
import { Health } from "./Health.ts"
import { Metrics } from "./Metrics.ts"
import { makeObservedCircuitBreaker } from "./resilience/circuitBreaker.ts"
import { StateStore } from "./StateStore.ts"

export { CommunicationServiceUnavailable } from "./auraid/client.ts"

/** An identity and whether it was served past its TTL because the Communication Service was down. */
export interface Resolution {
  readonly identity: AuraIdentity
  readonly stale: boolean
}

export type Contact = { readonly email: string } | { readonly phone: string }

export interface AuraIdResolverApi {
  /** False when COMMUNICATION_SERVICE_URL is unset: every operation fails with CommunicationServiceUnavailable. */
  readonly enabled: boolean
  /** `auraId` in canonical form (`aura:<id>`); None when the Communication Service does not know it. */
  readonly resolve: (auraId: string) => Effect.Effect<Option.Option<Resolution>, CommunicationServiceUnavailable>
  /** Canonical ids (duplicates answered once): cache first, one upstream batch for the rest. Fails when an id can be answered neither way. */
  readonly resolveMany: (auraIds: ReadonlyArray<string>) => Effect.Effect<ReadonlyMap<string, Option.Option<Resolution>>, CommunicationServiceUnavailable>
  /** Reverse lookup (not cached; the identity found is). */
  readonly findByContact: (contact: Contact) => Effect.Effect<Option.Option<Resolution>, CommunicationServiceUnavailable>
}

const notConfigured = new CommunicationServiceUnavailable({ reason: "AuraID resolution is not configured (COMMUNICATION_SERVICE_URL)", transient: false })

const disabled: AuraIdResolverApi = {
  enabled: false,
  resolve: () => Effect.fail(notConfigured),
  resolveMany: () => Effect.fail(notConfigured),
  findByContact: () => Effect.fail(notConfigured)
}

const counterOn = <L extends string>(registry: Metrics["Service"]["registry"], name: string, help: string, labelNames: ReadonlyArray<L>) => {
  const existing = registry.getSingleMetric(name)
  return existing instanceof Counter ? existing : new Counter({ name, help, labelNames, registers: [registry] })
}

const encodeEntry = Schema.encodeSync(CacheEntryJson)
const decodeEntry = Schema.decodeUnknownOption(CacheEntryJson)

const make = Effect.gen(function*() {
  const { auraId: settings } = yield* AppConfig
  if (Option.isNone(settings.url)) return disabled
  const { registry } = yield* Metrics
  const health = yield* Health
  const store = (yield* StateStore).namespace("auraid")
  const clock = yield* Clock.Clock
  const scope = yield* Effect.scope
  const now = () => clock.currentTimeMillisUnsafe()

  const cacheRequests = counterOn(registry, "auralink_auraid_cache_requests_total", "AuraID cache lookups by level (memory, store) and result (hit, miss)", [
    "level",
    "result"
  ])
  const calls = counterOn(registry, "auralink_auraid_upstream_calls_total", "Communication Service calls by operation and result (ok, error)", [
    "operation",
    "result"
  ])
  const breaker = yield* makeObservedCircuitBreaker(registry, {
    name: "communication_service",
    label: "Communication Service",
    failureThreshold: settings.breakerFailures,
    resetTimeoutMs: settings.breakerResetMs,
    whileOpen: "AuraIDs are served from cache only"
  })
  const client = makeCommunicationClient({
    baseUrl: settings.url.value,
    apiKey: settings.apiKey,
    timeoutMs: settings.timeoutMs,
    retries: settings.retries,
    breaker,
    calls
  })

  const memory = makeLru<CacheEntry>(settings.memoryEntries)
  const levels = { memory: makeLevelStats(), store: makeLevelStats() }
  const count = (level: "memory" | "store", hit: boolean) => {
    levels[level].record(hit)
    cacheRequests.inc({ level, result: hit ? "hit" : "miss" })
  }

  const entryFor = (identity: AuraIdentity | null): CacheEntry => {
    const at = now()
    const ttlMs = (identity === null ? settings.negativeTtlSeconds : settings.cacheTtlSeconds) * 1000
    // "Not found" is never served stale: an outage is no reason to keep denying a new AuraID.
    const staleMs = identity === null ? 0 : settings.staleMaxSeconds * 1000
    return { identity, freshUntil: at + ttlMs, staleUntil: at + ttlMs + staleMs }
  }

  /** Both levels; a store that cannot be written only costs a later upstream call. */
  const remember = (auraId: string, identity: AuraIdentity | null) => {
    const entry = entryFor(identity)
    memory.set(auraId, entry)
    return store.set(auraId, encodeEntry(entry), { ttlMs: Math.max(1, entry.staleUntil - now()) }).pipe(Effect.ignore)
  }

  const answer = (entry: CacheEntry, stale: boolean): Option.Option<Resolution> =>
    entry.identity === null ? Option.none() : Option.some({ identity: entry.identity, stale })

  /** A fresh entry from memory, else from the store (copied into memory); otherwise the best stale entry seen. */
  const cached = (auraId: string) =>
    Effect.gen(function*() {
      const inMemory = memory.get(auraId)
      const at = now()
      if (inMemory !== undefined && at < inMemory.freshUntil) {
        count("memory", true)
        return { fresh: inMemory, stale: undefined }
      }
      count("memory", false)
      const stored = yield* store.get(auraId).pipe(Effect.orElseSucceed(() => Option.none<string>()))
      const entry = Option.getOrUndefined(Option.flatMap(stored, decodeEntry))
      if (entry !== undefined && now() < entry.freshUntil) {
        count("store", true)
        memory.set(auraId, entry)
        return { fresh: entry, stale: undefined }
      }
      count("store", false)
      const candidates = [inMemory, entry].filter((e): e is CacheEntry => e !== undefined && e.identity !== null && now() < e.staleUntil)
      return { fresh: undefined, stale: candidates.sort((a, b) => b.freshUntil - a.freshUntil)[0] }
    })

  // Request coalescing: one upstream call per id at a time; it runs in the layer's scope, so a caller
  // interrupted while waiting does not cancel it for the others.
  const inFlight = new Map<string, Deferred.Deferred<Option.Option<AuraIdentity>, CommunicationServiceUnavailable>>()
  const fetchOne = (auraId: string) =>
    Effect.suspend(() => {
      const running = inFlight.get(auraId)
      if (running !== undefined) return Deferred.await(running)
      // Registered synchronously, before anything can yield, so no second caller starts a call of its own.
      const result = Deferred.makeUnsafe<Option.Option<AuraIdentity>, CommunicationServiceUnavailable>()
      inFlight.set(auraId, result)
      // Unregistered before the waiters wake, so a resolve after this one's answer never joins it.
      const settle = (complete: Effect.Effect<boolean>) =>
        Effect.suspend(() => {
          if (inFlight.get(auraId) === result) inFlight.delete(auraId)
          return complete
        })
      return client.get(auraId).pipe(
        Effect.tap((found) => remember(auraId, Option.getOrNull(found))),
        Effect.exit,
        Effect.flatMap((exit) => settle(Deferred.done(result, exit))),
        // Interrupted (the layer is closing): the waiters end too.
        Effect.onInterrupt(() => settle(Deferred.interrupt(result))),
        Effect.forkIn(scope),
        Effect.andThen(Deferred.await(result))
      )
    })

  /** Upstream's answer, else the stale entry (the failure when there is none). */
  const orStale = <E>(stale: CacheEntry | undefined, failure: E) => stale === undefined ? Effect.fail(failure) : Effect.succeed(answer(stale, true))

  const resolve = (auraId: string) =>
    Effect.gen(function*() {
      const { fresh, stale } = yield* cached(auraId)
      if (fresh !== undefined) return answer(fresh, false)
      return yield* fetchOne(auraId).pipe(
        Effect.map((found) => Option.map(found, (identity): Resolution => ({ identity, stale: false }))),
        Effect.catch((failure) => orStale(stale, failure))
      )
    })

  const resolveMany = (auraIds: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const unique = [...new Set(auraIds)]
      const looked = yield* Effect.forEach(unique, (id) => Effect.map(cached(id), (c) => [id, c] as const), { concurrency: 16 })
      const results = new Map<string, Option.Option<Resolution>>()
      const misses: Array<readonly [string, CacheEntry | undefined]> = []
      for (const [id, { fresh, stale }] of looked) {
        if (fresh !== undefined) results.set(id, answer(fresh, false))
        else misses.push([id, stale])
      }
      if (misses.length === 0) return results
      const answered = yield* client.batch(misses.map(([id]) => id)).pipe(Effect.result)
      if (answered._tag === "Success") {
        const byId = new Map(answered.success.results.map((identity) => [identity.auraId, identity]))
        yield* Effect.forEach(misses, ([id]) => {
          const identity = byId.get(id)
          results.set(id, identity === undefined ? Option.none() : Option.some({ identity, stale: false }))
          return remember(id, identity ?? null)
        }, { discard: true, concurrency: 16 })
        return results
      }
      for (const [id, stale] of misses) results.set(id, yield* orStale(stale, answered.failure))
      return results
    })

  const findByContact = (contact: Contact) =>
    client.lookup(contact).pipe(
      Effect.tap((found) => Option.isSome(found) ? remember(found.value.auraId, found.value) : Effect.void),
      Effect.map(Option.map((identity): Resolution => ({ identity, stale: false })))
    )

  yield* health.register({ name: "communication_service", critical: false, check: client.health })
  yield* health.section(
    "auraid",
    Effect.gen(function*() {
      return {
        enabled: true,
        memory: { ...levels.memory.snapshot(), entries: memory.size },
        store: levels.store.snapshot(),
        coalescing: inFlight.size,
        breaker: yield* breaker.state
      }
    })
  )
  return { enabled: true, resolve, resolveMany, findByContact } satisfies AuraIdResolverApi
})

/**
 * AuraID resolution through the Communication Service (README "AuraID resolution"): a two-level
 * cache (in-process LRU, then the state store), negative caching, request coalescing, batch
 * resolution, reverse lookup, and stale answers while the service is down. Policy (who sees
 * which fields) is the programs' (src/programs/auraid).
 */
export class AuraIdResolver extends Context.Service<AuraIdResolver, AuraIdResolverApi>()("auralink/AuraIdResolver") {
  static readonly layer = Layer.effect(AuraIdResolver, make)
}
