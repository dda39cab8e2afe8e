import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { Redis as IORedis } from "ioredis"
import { Health } from "../../src/layers/Health.ts"
import { Metrics } from "../../src/layers/Metrics.ts"
import { reconnectDelay, redactUrl, Redis, RedisConnectError } from "../../src/layers/Redis.ts"
import { StateStore } from "../../src/layers/StateStore.ts"
import { captureLogs, configLayer, eventually, REDIS_URL } from "../support/redis.ts"

const redisWithHealth = (raw: Readonly<Record<string, string>> = {}, options: Parameters<typeof Redis.layerWith>[0] = {}) =>
  Layer.mergeAll(Redis.layerWith(options), Health.layerTest, Metrics.layer).pipe(
    Layer.provide(Layer.mergeAll(configLayer(raw), Health.layerTest, Metrics.layer))
  )

describe("Redis layer", () => {
  it.live("scripts still run after the server forgot them (SCRIPT FLUSH: EVALSHA falls back to EVAL)", () =>
    Effect.gen(function*() {
      const redis = yield* Redis
      const store = (yield* StateStore).namespace(`script-flush-${crypto.randomUUID()}`)
      assert.strictEqual(yield* store.incr("n", 1, { ttlMs: 60_000 }), 1)
      yield* Effect.promise(() => redis.client.script("FLUSH"))
      assert.strictEqual(yield* store.incr("n", 2), 3)
      assert.strictEqual(yield* store.listPush("l", "a", { cap: 2 }), 1)
      yield* store.del("n", "l")
    }).pipe(Effect.provide(StateStore.layerRedis.pipe(Layer.provideMerge(redisWithHealth()), Layer.provide(configLayer())))))

  it.live("connects, reports readiness up and a /status section", () =>
    Effect.gen(function*() {
      const redis = yield* Redis
      assert.strictEqual(yield* Effect.promise(() => redis.client.ping()), "PONG")
      const health = yield* Health
      const readiness = yield* health.readiness
      assert.deepInclude(readiness.dependencies["redis"], { critical: true, status: "up", lastError: null })
      assert.isTrue(readiness.ready)
      const sections = yield* health.sections
      assert.deepInclude(sections["redis"], { status: "ready", reconnects: 0, url: redactUrl(REDIS_URL) })
    }).pipe(Effect.provide(redisWithHealth())))

  it.live("counts ready connections (main and duplicates) in the section and in auralink_redis_connections_active", () =>
    Effect.gen(function*() {
      const redis = yield* Redis
      const { registry } = yield* Metrics
      const health = yield* Health
      const gauge = Effect.promise(async () => (await registry.metrics()).split("\n").find((l) => l.startsWith("auralink_redis_connections_active ")))
      assert.strictEqual(yield* gauge, "auralink_redis_connections_active 1")
      const scope = yield* Scope.make()
      yield* redis.duplicate("subscriber").pipe(Scope.provide(scope))
      yield* redis.duplicate("extra").pipe(Scope.provide(scope))
      assert.strictEqual(yield* gauge, "auralink_redis_connections_active 3")
      assert.deepInclude(Object((yield* health.sections)["redis"]), { connections: { open: 3, ready: 3 } })
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(yield* gauge, "auralink_redis_connections_active 1")
      assert.deepStrictEqual(redis.connections(), { open: 1, ready: 1 })
    }).pipe(Effect.provide(redisWithHealth())))

  it.live("an unreachable Redis fails start-up with a typed error, in bounded time, without the password", () =>
    Effect.gen(function*() {
      const started = Date.now()
      const error = yield* Effect.flip(
        Layer.build(redisWithHealth({ REDIS_URL: "redis://:secretpw@127.0.0.1:1" }, { connectTimeoutMs: 1_000 }))
      )
      const elapsed = Date.now() - started
      assert.instanceOf(error, RedisConnectError)
      assert.isTrue(elapsed >= 900 && elapsed < 3_000, `took ${elapsed} ms`)
      assert.include(error.message, "redis://:***@127.0.0.1:1")
      assert.include(error.message, "ECONNREFUSED")
      assert.notInclude(error.message, "secretpw")
      assert.notInclude(JSON.stringify(error), "secretpw")
    }))

  it.live("no REDIS_URL: a typed error, not a connection attempt", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(redisWithHealth({ REDIS_URL: "" })))
      assert.instanceOf(error, RedisConnectError)
      assert.include(error.message, "REDIS_URL is not set")
    }))

  it.live("quits when its scope closes", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const services = yield* Layer.buildWithScope(redisWithHealth(), scope)
      const redis = Context.get(services, Redis)
      const extra = yield* redis.duplicate("extra").pipe(Scope.provide(scope))
      assert.strictEqual(redis.client.status, "ready")
      assert.strictEqual(extra.status, "ready")
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(redis.client.status, "end")
      assert.strictEqual(extra.status, "end")
    }))

  it.live("reconnects after the server drops the connection, counts and logs it", () =>
    Effect.gen(function*() {
      const logs = captureLogs()
      yield* Effect.gen(function*() {
        const redis = yield* Redis
        const health = yield* Health
        const id = yield* Effect.promise(() => redis.client.client("ID"))
        const admin = new IORedis(REDIS_URL)
        yield* Effect.promise(() => admin.client("KILL", "ID", String(id))).pipe(Effect.ensuring(Effect.sync(() => admin.disconnect())))
        yield* eventually(Effect.map(health.sections, (s) => JSON.stringify(s["redis"]).includes(`"reconnects":1`)))
        yield* eventually(Effect.map(health.readiness, (r) => r.ready))
        assert.strictEqual(yield* Effect.promise(() => redis.client.ping()), "PONG")
      }).pipe(Effect.provide(redisWithHealth({}, { connectTimeoutMs: 2_000 })), Effect.provide(logs.layer))
      assert.include(logs.lines, "redis connection lost, reconnecting")
      assert.include(logs.lines, "redis connection ready again")
    }))
})

describe("reconnectDelay", () => {
  it("grows exponentially from the base, is capped, and jitters within the upper half", () => {
    assert.strictEqual(reconnectDelay(1, 100, 5_000, () => 1), 100)
    assert.strictEqual(reconnectDelay(1, 100, 5_000, () => 0), 50)
    assert.strictEqual(reconnectDelay(4, 100, 5_000, () => 1), 800)
    assert.strictEqual(reconnectDelay(30, 100, 5_000, () => 1), 5_000)
    assert.strictEqual(reconnectDelay(30, 100, 5_000, () => 0), 2_500)
    for (let attempt = 1; attempt < 40; attempt++) {
      const delay = reconnectDelay(attempt, 100, 5_000)
      assert.isTrue(delay >= 50 && delay <= 5_000)
    }
  })

  it("redactUrl hides only the password", () => {
    assert.strictEqual(redactUrl("redis://user:secretpw@redis.local:6380/2"), "redis://user:***@redis.local:6380/2")
    assert.strictEqual(redactUrl("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379")
    assert.strictEqual(redactUrl("not a url"), "<unparseable redis url>")
  })
})
