import { Context, Effect, Layer, Option, Redacted } from "effect"
import { AppConfig } from "./Config.ts"
import { Health } from "./Health.ts"
import { Redis, redactUrl } from "./Redis.ts"
import { DEFAULT_PREFIX, makeStateStore, type StateStoreApi } from "./state-store/common.ts"
import { makeMemoryBackend } from "./state-store/memory.ts"
import { makeRedisBackend } from "./state-store/redis.ts"

export { StateStoreError, type StateStoreApi, type TtlOptions } from "./state-store/common.ts"

/**
 * Small shared state: strings with TTLs, counters, hashes, capped lists and pub/sub, all under
 * the "auralink:" prefix (`namespace(name)` for a sub-prefix). Redis when REDIS_URL is set,
 * else an in-memory store for the embedded default.
 */
export class StateStore extends Context.Service<StateStore, StateStoreApi>()("auralink/StateStore") {
  static readonly layerMemory = Layer.effect(StateStore, Effect.map(makeMemoryBackend, (backend) => makeStateStore(backend, DEFAULT_PREFIX)))

  static readonly layerRedis = Layer.effect(
    StateStore,
    Effect.gen(function*() {
      const redis = yield* Redis
      const { redis: settings } = yield* AppConfig
      const subscriber = yield* redis.duplicate("subscriber")
      return makeStateStore(yield* makeRedisBackend(redis.client, subscriber), settings.keyPrefix)
    })
  )

  /** Redis when settings.redis.url is set (providing `Redis.layer`), else memory with an always-up readiness entry. */
  static readonly layer = Layer.unwrap(
    Effect.gen(function*() {
      const { redis } = yield* AppConfig
      if (Option.isSome(redis.url)) {
        yield* Effect.logInfo(`state store backend: redis (${redactUrl(Redacted.value(redis.url.value))})`)
        return StateStore.layerRedis.pipe(Layer.provide(Redis.layer))
      }
      yield* Effect.logInfo("state store backend: in-memory")
      const readiness = Layer.effectDiscard(
        Health.use((health) => health.register({ name: "state_store", critical: false, check: Effect.void }))
      )
      return Layer.merge(StateStore.layerMemory, readiness)
    })
  )
}
