import { Effect, Layer } from "effect"
import type { RawConfig } from "../../src/config/source.ts"
import { AudioSink } from "../../src/layers/AudioSink.ts"
import { Database } from "../../src/layers/Database.ts"
import { Health } from "../../src/layers/Health.ts"
import { Metrics } from "../../src/layers/Metrics.ts"
import { StateStore } from "../../src/layers/StateStore.ts"
import { SharedServices } from "../../src/programs/services.ts"
import { testConfig } from "./http.ts"
import { freshDatabase } from "./postgres.ts"

/**
 * `listeners` (e.g. `serveHttp(ApiRoutes, 0, host)`) over the service's layers composed as in
 * main.ts, on a fresh database of the real Postgres; the state store is Redis when `env` sets
 * REDIS_URL, else in memory; the audio sink is the ASR gateway when `env` sets ASR_GATEWAY_URL,
 * else WAV recordings under DATA_DIR. Every layer stays visible to the tests.
 */
export const onFreshDatabase = <A, E, R>(listeners: Layer.Layer<A, E, R>, env: RawConfig = {}) =>
  Layer.unwrap(Effect.map(freshDatabase, (url) =>
    listeners.pipe(
      Layer.provideMerge(SharedServices),
      Layer.provideMerge(Layer.mergeAll(Database.layer, StateStore.layer, AudioSink.layer)),
      Layer.provideMerge(Layer.mergeAll(Health.layer, Metrics.layer)),
      Layer.provideMerge(testConfig({ DATABASE_URL: url, ...env }))
    )))
