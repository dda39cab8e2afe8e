import { Effect, Layer } from "effect"
import type { RawConfig } from "../../src/config/source.ts"
import { AppServices } from "../../src/main.ts"
import { testConfig } from "./http.ts"
import { freshDatabase } from "./postgres.ts"

/**
 * `listeners` (e.g. `serveHttp(ApiRoutes, 0, host)`) over main.ts's layers below the listeners,
 * on a fresh database of the real Postgres; the state store is Redis when `env` sets
 * REDIS_URL, else in memory; the audio sink is the ASR gateway when `env` sets ASR_GATEWAY_URL,
 * else WAV recordings under DATA_DIR. Every layer stays visible to the tests.
 */
export const onFreshDatabase = <A, E, R>(listeners: Layer.Layer<A, E, R>, env: RawConfig = {}) =>
  Layer.unwrap(Effect.map(freshDatabase, (url) =>
    listeners.pipe(
      Layer.provideMerge(AppServices),
      Layer.provideMerge(testConfig({ DATABASE_URL: url, ...env }))
    )))
