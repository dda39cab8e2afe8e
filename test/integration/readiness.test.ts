import { afterAll, assert, describe, it, layer } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import type { RawConfig } from "../../src/config/source.ts"
import { ApiRoutes } from "../../src/adapters/http/routes.ts"
import { AudioSink } from "../../src/layers/AudioSink.ts"
import { AppConfig } from "../../src/layers/Config.ts"
import { Database } from "../../src/layers/Database.ts"
import { Health } from "../../src/layers/Health.ts"
import { serveHttp } from "../../src/layers/HttpServer.ts"
import { Metrics } from "../../src/layers/Metrics.ts"
import { StateStore } from "../../src/layers/StateStore.ts"
import { SharedServices } from "../../src/main.ts"
import { record } from "../support/auth.ts"
import { baseUrl, capturedLogs, testConfig } from "../support/http.ts"
import { freshDatabase } from "../support/postgres.ts"
import { privateRedis } from "../support/private-redis.ts"
import { eventually } from "../support/redis.ts"

// A redis-server of this file's own, stopped and started again by the tests.
const redis = await privateRedis()
afterAll(() => redis.stop())

const logs = capturedLogs()

/** The real API over Postgres and the state store on the private Redis (REDIS_URL), with READY_CRITICAL_DEPENDENCIES unset. */
const Server = Layer.unwrap(Effect.map(freshDatabase, (url) =>
  serveHttp(ApiRoutes, 0, "127.0.0.1").pipe(
    Layer.provideMerge(SharedServices),
    Layer.provideMerge(Layer.mergeAll(Database.layer, StateStore.layer, AudioSink.layer)),
    Layer.provideMerge(Layer.mergeAll(Health.layer, Metrics.layer)),
    Layer.provideMerge(testConfig({ DATABASE_URL: url, REDIS_URL: redis.url })),
    Layer.provide(logs.layer)
  )))

const ready = Effect.gen(function*() {
  const url = yield* baseUrl
  const response = yield* Effect.promise(() => fetch(`${url}/ready`))
  const body = record(yield* Effect.promise((): Promise<unknown> => response.json()))
  return { status: response.status, body, dependencies: record(body["dependencies"]) }
})

layer(Server, { excludeTestServices: true, timeout: 60_000 })("/ready over a Redis that goes away (default critical dependencies)", (it) => {
  it.effect("redis is critical when configured: down is 503 with its error; back is 200, the error kept", () =>
    Effect.gen(function*() {
      const before = yield* ready
      assert.strictEqual(before.status, 200)
      assert.deepInclude(record(before.dependencies["postgres"]), { status: "up", critical: true, lastError: null })
      assert.deepInclude(record(before.dependencies["redis"]), { status: "up", critical: true, lastError: null })
      assert.deepStrictEqual(before.dependencies["dashboard"], { status: "unconfigured", latencyMs: null, lastError: null, critical: false })

      yield* Effect.promise(() => redis.kill())
      const down = yield* ready
      assert.strictEqual(down.status, 503)
      assert.strictEqual(down.body["status"], "not_ready")
      const redisDown = record(down.dependencies["redis"])
      assert.deepInclude(redisDown, { status: "down", critical: true })
      assert.isString(redisDown["lastError"])

      yield* Effect.promise(() => redis.start())
      yield* eventually(Effect.map(ready, (r) => r.status === 200), 10_000)
      const back = yield* ready
      const redisBack = record(back.dependencies["redis"])
      assert.strictEqual(redisBack["status"], "up")
      // The last error seen (polls while it reconnected may have seen a later one than `redisDown`'s) is kept.
      assert.match(String(redisBack["lastError"]), /^redis connection/)
    }))
})

/** Health and the state store on the private Redis, with `settings` (READY_CRITICAL_DEPENDENCIES). */
const healthWith = (settings: RawConfig) => {
  const config = AppConfig.layerFrom({ REDIS_URL: redis.url, ...settings })
  const health = Health.layer.pipe(Layer.provide(config))
  return Layer.merge(StateStore.layer, health).pipe(Layer.provide(Layer.mergeAll(config, health, Metrics.layer)))
}

describe("READY_CRITICAL_DEPENDENCIES", () => {
  it.live("names exactly the critical ones: redis down is no reason for 503 then; an unconfigured critical one holds nothing back", () =>
    Effect.gen(function*() {
      const health = yield* Health
      yield* Effect.promise(() => redis.kill())
      const readiness = yield* health.readiness
      assert.isTrue(readiness.ready)
      assert.deepInclude(readiness.dependencies["redis"], { status: "down", critical: false })
      assert.deepInclude(readiness.dependencies["dashboard"], { status: "unconfigured", critical: true })
      assert.deepInclude(readiness.dependencies["postgres"], { status: "unconfigured", critical: true })
      yield* Effect.promise(() => redis.start())
    }).pipe(Effect.provide(healthWith({ READY_CRITICAL_DEPENDENCIES: "postgres, dashboard" }))))

  it.effect("is checked: names only (lower case, digits, underscores); empty is the default", () =>
    Effect.gen(function*() {
      const readyCritical = Effect.gen(function*() {
        return (yield* AppConfig).service.readyCritical
      })
      const parsed = (raw: RawConfig) => readyCritical.pipe(Effect.provide(AppConfig.layerFrom(raw)))
      const error = yield* Effect.flip(parsed({ READY_CRITICAL_DEPENDENCIES: "postgres,Redis!" }))
      assert.include(error.message, "READY_CRITICAL_DEPENDENCIES")
      assert.deepStrictEqual(yield* parsed({ READY_CRITICAL_DEPENDENCIES: "postgres, ai_core" }), Option.some(["postgres", "ai_core"]))
      assert.deepStrictEqual(yield* parsed({ READY_CRITICAL_DEPENDENCIES: "" }), Option.none())
      assert.deepStrictEqual(yield* parsed({}), Option.none())
    }))
})
