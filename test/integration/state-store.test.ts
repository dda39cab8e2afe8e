import { afterAll, assert, describe, it, layer } from "@effect/vitest"
import { Effect, Fiber, Layer, Option, Queue, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Health } from "../../src/layers/Health.ts"
import { Metrics } from "../../src/layers/Metrics.ts"
import { Redis } from "../../src/layers/Redis.ts"
import { StateStore, type StateStoreApi, StateStoreError } from "../../src/layers/StateStore.ts"
import { captureLogs, configLayer, deleteKeys, eventually, REDIS_URL, runPrefix } from "../support/redis.ts"

const RUN = runPrefix()

/** A view of the store under a prefix of its own, so each test starts empty. */
const fresh = (label: string) => StateStore.use((store) => Effect.succeed(store.namespace(`${RUN}:${label}`)))

/** Asserts a typed InvalidArgument failure. */
const rejects = <A>(effect: Effect.Effect<A, StateStoreError>) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(effect)
    assert.instanceOf(error, StateStoreError)
    assert.strictEqual(error.reason, "InvalidArgument")
  })

const wrongType = <A>(effect: Effect.Effect<A, StateStoreError>) =>
  Effect.flip(effect).pipe(Effect.map((error) => assert.strictEqual(error.reason, "WrongType")))

/** Subscribes, then collects `n` messages on a forked fiber. */
const collect = (store: StateStoreApi, channel: string, n: number) =>
  Effect.flatMap(store.subscribe(channel), (messages) => Effect.forkChild(Stream.runCollect(Stream.take(messages, n))))

/** The behaviour both implementations must share; real (short) sleeps so one suite fits both. */
const contract = (name: string, storeLayer: Layer.Layer<StateStore, unknown>) =>
  layer(storeLayer, { excludeTestServices: true, timeout: "30 seconds" })(name, (it) => {
    it.effect("get / set / del", () =>
      Effect.gen(function*() {
        const store = yield* fresh("basic")
        assert.deepStrictEqual(yield* store.get("a"), Option.none())
        yield* store.set("a", "1")
        yield* store.set("b", "2")
        assert.deepStrictEqual(yield* store.get("a"), Option.some("1"))
        yield* store.set("a", "one")
        assert.deepStrictEqual(yield* store.get("a"), Option.some("one"))
        assert.strictEqual(yield* store.del("a", "b", "missing"), 2)
        assert.strictEqual(yield* store.del(), 0)
        assert.deepStrictEqual(yield* store.get("a"), Option.none())
      }))

    it.effect("set with a TTL expires; set without one clears it", () =>
      Effect.gen(function*() {
        const store = yield* fresh("ttl")
        yield* store.set("short", "x", { ttlMs: 200 })
        yield* store.set("kept", "y", { ttlMs: 200 })
        yield* store.set("kept", "y")
        const left = Option.getOrThrow(yield* store.ttl("short"))
        assert.isTrue(left > 0 && left <= 200, `ttl ${left}`)
        assert.deepStrictEqual(yield* store.ttl("kept"), Option.none())
        assert.deepStrictEqual(yield* store.ttl("missing"), Option.none())
        yield* Effect.sleep("300 millis")
        assert.deepStrictEqual(yield* store.get("short"), Option.none())
        assert.deepStrictEqual(yield* store.ttl("short"), Option.none())
        assert.deepStrictEqual(yield* store.get("kept"), Option.some("y"))
        yield* store.del("kept")
      }))

    it.effect("setIfAbsent and expire", () =>
      Effect.gen(function*() {
        const store = yield* fresh("nx")
        assert.isTrue(yield* store.setIfAbsent("lock", "me", { ttlMs: 200 }))
        assert.isFalse(yield* store.setIfAbsent("lock", "you"))
        assert.deepStrictEqual(yield* store.get("lock"), Option.some("me"))
        yield* Effect.sleep("300 millis")
        assert.isTrue(yield* store.setIfAbsent("lock", "you"))
        assert.deepStrictEqual(yield* store.ttl("lock"), Option.none())
        assert.isFalse(yield* store.expire("missing", 200))
        assert.isTrue(yield* store.expire("lock", 200))
        assert.isTrue(Option.isSome(yield* store.ttl("lock")))
        yield* Effect.sleep("300 millis")
        assert.deepStrictEqual(yield* store.get("lock"), Option.none())
      }))

    it.effect("incr counts and sets the TTL only when it creates the key", () =>
      Effect.gen(function*() {
        const store = yield* fresh("incr")
        assert.strictEqual(yield* store.incr("n"), 1)
        assert.strictEqual(yield* store.incr("n", 5), 6)
        assert.strictEqual(yield* store.incr("n", -10), -4)
        assert.deepStrictEqual(yield* store.ttl("n"), Option.none())
        // A fixed window: the second hit must not extend the first hit's TTL.
        assert.strictEqual(yield* store.incr("window", 1, { ttlMs: 300 }), 1)
        yield* Effect.sleep("150 millis")
        assert.strictEqual(yield* store.incr("window", 1, { ttlMs: 300 }), 2)
        const left = Option.getOrThrow(yield* store.ttl("window"))
        assert.isTrue(left <= 160, `window ttl was extended: ${left}`)
        yield* Effect.sleep("250 millis")
        assert.strictEqual(yield* store.incr("window", 1, { ttlMs: 300 }), 1)
        // incr on a key without TTL never adds one.
        assert.strictEqual(yield* store.incr("n", 1, { ttlMs: 300 }), -3)
        assert.deepStrictEqual(yield* store.ttl("n"), Option.none())
        yield* store.set("text", "abc")
        yield* wrongType(store.incr("text"))
        assert.deepStrictEqual(yield* store.get("text"), Option.some("abc"))
        yield* store.del("n", "window", "text")
      }))

    it.effect("concurrent incr from many fibers gives an exact count", () =>
      Effect.gen(function*() {
        const store = yield* fresh("concurrent")
        const results = yield* Effect.forEach(Array.from({ length: 200 }), () => store.incr("hits", 1, { ttlMs: 10_000 }), {
          concurrency: "unbounded"
        })
        assert.deepStrictEqual([...results].sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i + 1))
        assert.deepStrictEqual(yield* store.get("hits"), Option.some("200"))
        yield* store.del("hits")
      }))

    it.effect("hashes", () =>
      Effect.gen(function*() {
        const store = yield* fresh("hash")
        assert.deepStrictEqual(yield* store.hgetAll("p"), {})
        yield* store.hset("p", { name: "ada", role: "host" })
        yield* store.hset("p", { role: "guest", muted: "true" })
        yield* store.hset("p", {})
        assert.deepStrictEqual(yield* store.hget("p", "role"), Option.some("guest"))
        assert.deepStrictEqual(yield* store.hget("p", "missing"), Option.none())
        assert.deepStrictEqual(yield* store.hgetAll("p"), { name: "ada", role: "guest", muted: "true" })
        assert.strictEqual(yield* store.hlen("p"), 3)
        assert.strictEqual(yield* store.hlen("absent"), 0)
        assert.strictEqual(yield* store.hdel("p", "muted", "missing"), 1)
        yield* wrongType(store.get("p"))
        yield* wrongType(store.listPush("p", "x", { cap: 2 }))
        assert.strictEqual(yield* store.hdel("p", "name", "role"), 2)
        assert.deepStrictEqual(yield* store.hgetAll("p"), {})
        // An emptied hash is no key at all, on both backends.
        assert.isTrue(yield* store.setIfAbsent("p", "free"))
        yield* wrongType(store.hget("p", "name"))
        yield* store.del("p")
      }))

    it.effect("hsetIfNewer: a later stamp wins, a removal is remembered, an older write changes nothing", () =>
      Effect.gen(function*() {
        const store = yield* fresh("newer")
        assert.isTrue(yield* store.hsetIfNewer("room", "ada", "joined", 100))
        assert.isFalse(yield* store.hsetIfNewer("room", "ada", "stale", 99))
        assert.deepStrictEqual(yield* store.hgetAll("room"), { ada: "joined" })
        assert.isTrue(yield* store.hsetIfNewer("room", "ada", null, 200))
        // The late join of before the leave does not bring the participant back.
        assert.isFalse(yield* store.hsetIfNewer("room", "ada", "joined", 150))
        assert.deepStrictEqual(yield* store.hgetAll("room"), {})
        // Equal stamps apply in arrival order.
        assert.isTrue(yield* store.hsetIfNewer("room", "ada", "again", 200))
        assert.deepStrictEqual(yield* store.hget("room", "ada"), Option.some("again"))
        yield* rejects(store.hsetIfNewer("room", "ada", "x", Number.NaN))
        yield* store.del("room", "room:stamps")
      }))

    it.effect("leases: one holder at a time, renewed by its holder, free again after release or expiry", () =>
      Effect.gen(function*() {
        const store = yield* fresh("lease")
        assert.isTrue(yield* store.holdLease("sync", "a", 200))
        assert.isFalse(yield* store.holdLease("sync", "b", 200))
        assert.isTrue(yield* store.holdLease("sync", "a", 200))
        assert.isFalse(yield* store.releaseLease("sync", "b"))
        assert.isTrue(yield* store.releaseLease("sync", "a"))
        assert.isTrue(yield* store.holdLease("sync", "b", 50))
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 80)))
        assert.isTrue(yield* store.holdLease("sync", "a", 200))
        yield* rejects(store.holdLease("sync", "", 200))
        yield* store.del("sync")
      }))

    it.effect("a capped list keeps only the newest N", () =>
      Effect.gen(function*() {
        const store = yield* fresh("list")
        const lengths = yield* Effect.forEach([1, 2, 3, 4, 5, 6], (n) => store.listPush("events", `e${n}`, { cap: 3 }))
        assert.deepStrictEqual(lengths, [1, 2, 3, 3, 3, 3])
        assert.deepStrictEqual(yield* store.listRange("events", 0, -1), ["e4", "e5", "e6"])
        assert.deepStrictEqual(yield* store.listRange("events", -2, -1), ["e5", "e6"])
        assert.deepStrictEqual(yield* store.listRange("events", 1, 1), ["e5"])
        assert.deepStrictEqual(yield* store.listRange("events", 5, 10), [])
        assert.deepStrictEqual(yield* store.listRange("events", -100, 100), ["e4", "e5", "e6"])
        assert.deepStrictEqual(yield* store.listRange("missing", 0, -1), [])
        yield* Effect.forEach(Array.from({ length: 50 }), (_, i) => store.listPush("events", `c${i}`, { cap: 3 }), {
          concurrency: "unbounded"
        })
        assert.strictEqual((yield* store.listRange("events", 0, -1)).length, 3)
        yield* store.del("events")
      }))

    it.effect("pub/sub delivers in order and stops after interruption", () =>
      Effect.gen(function*() {
        const store = yield* fresh("pubsub")
        assert.strictEqual(yield* store.publish("room", "nobody"), 0)
        const first = yield* collect(store, "room", 5)
        const second = yield* collect(store, "room", 2)
        const sent = ["m1", "m2", "m3", "m4", "m5"]
        const receivers = yield* Effect.forEach(sent, (m) => store.publish("room", m))
        assert.deepStrictEqual(receivers, [1, 1, 1, 1, 1]) // one receiver: this process, however many streams
        assert.deepStrictEqual(yield* Fiber.join(first), sent)
        assert.deepStrictEqual(yield* Fiber.join(second), ["m1", "m2"])

        const messages = yield* store.subscribe("room")
        const seen = yield* Queue.unbounded<string>()
        const endless = yield* Effect.forkChild(Stream.runForEach(messages, (m) => Queue.offer(seen, m)))
        assert.strictEqual(yield* store.publish("room", "while running"), 1)
        assert.strictEqual(yield* Queue.take(seen), "while running") // the stream is running: interrupt it now
        yield* Fiber.interrupt(endless)
        yield* eventually(Effect.map(store.publish("room", "after"), (n) => n === 0))
      }))

    it.effect("pub/sub: closing the subscriber's scope unsubscribes", () =>
      Effect.gen(function*() {
        const store = yield* fresh("pubsub-scope")
        yield* Effect.scoped(Effect.gen(function*() {
          yield* store.subscribe("ch")
          assert.strictEqual(yield* store.publish("ch", "x"), 1)
        }))
        yield* eventually(Effect.map(store.publish("ch", "y"), (n) => n === 0))
      }))

    it.effect("prefixes isolate keys and channels", () =>
      Effect.gen(function*() {
        const root = yield* fresh("prefix")
        const a = root.namespace("a")
        const b = root.namespace("b")
        assert.strictEqual(a.prefix, `${root.prefix}a:`)
        yield* a.set("k", "from a")
        assert.deepStrictEqual(yield* b.get("k"), Option.none())
        assert.deepStrictEqual(yield* root.get("a:k"), Option.some("from a"))
        yield* a.incr("n")
        yield* b.incr("n", 10)
        assert.deepStrictEqual(yield* a.get("n"), Option.some("1"))
        const onA = yield* collect(a, "ch", 1)
        assert.strictEqual(yield* b.publish("ch", "from b"), 0)
        assert.strictEqual(yield* a.publish("ch", "from a"), 1)
        assert.deepStrictEqual(yield* Fiber.join(onA), ["from a"])
        yield* root.del("a:k", "a:n", "b:n")
      }))

    it.effect("invalid arguments fail with a typed error and change nothing", () =>
      Effect.gen(function*() {
        const store = yield* fresh("invalid")
        yield* rejects(store.set("k", "v", { ttlMs: -1 }))
        yield* rejects(store.set("k", "v", { ttlMs: 0 }))
        yield* rejects(store.set("k", "v", { ttlMs: 1.5 }))
        yield* rejects(store.setIfAbsent("k", "v", { ttlMs: Number.NaN }))
        yield* rejects(store.set("", "v"))
        assert.deepStrictEqual(yield* store.get("k"), Option.none())

        yield* rejects(store.listPush("list", "x", { cap: 0 }))
        yield* rejects(store.listPush("list", "x", { cap: -3 }))
        assert.deepStrictEqual(yield* store.listRange("list", 0, -1), [])
        yield* rejects(store.listRange("list", 0.5, 1))

        yield* store.set("n", "5")
        yield* rejects(store.incr("n", 1.5))
        yield* rejects(store.incr("n", 1, { ttlMs: -100 }))
        yield* rejects(store.expire("n", -1))
        assert.deepStrictEqual(yield* store.get("n"), Option.some("5"))
        assert.deepStrictEqual(yield* store.ttl("n"), Option.none())

        yield* rejects(store.hset("h", { "": "empty field", ok: "1" }))
        assert.deepStrictEqual(yield* store.hgetAll("h"), {})
        yield* rejects(store.publish("", "x"))
        yield* rejects(Effect.scoped(store.subscribe("")))
        yield* rejects(store.del("n", ""))
        assert.deepStrictEqual(yield* store.get("n"), Option.some("5"))
        yield* store.del("n")
      }))
  })

contract("StateStore (in-memory)", StateStore.layerMemory)

const redisStore = StateStore.layerRedis.pipe(Layer.provide(Redis.layer), Layer.provide(Layer.mergeAll(configLayer(), Health.layerTest, Metrics.layer)))
contract("StateStore (redis)", redisStore)
afterAll(() => deleteKeys(`auralink:${RUN}:*`))

describe("StateStore (in-memory) with TestClock", () => {
  it.effect("TTLs follow the Effect Clock", () =>
    Effect.gen(function*() {
      const store = yield* StateStore
      yield* store.set("k", "v", { ttlMs: 60_000 })
      yield* store.incr("window", 1, { ttlMs: 1_000 })
      yield* TestClock.adjust("59 seconds")
      assert.deepStrictEqual(yield* store.get("k"), Option.some("v"))
      assert.strictEqual(yield* store.incr("window", 1, { ttlMs: 1_000 }), 1)
      assert.deepStrictEqual(yield* store.ttl("k"), Option.some(1_000))
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* store.get("k"), Option.none())
    }).pipe(Effect.provide(StateStore.layerMemory)))
})

describe("StateStore.layer", () => {
  it.live("uses Redis when REDIS_URL is set and says so, with the password redacted", () =>
    Effect.gen(function*() {
      const logs = captureLogs()
      const url = new URL(REDIS_URL)
      url.username = "default"
      url.password = "secretpw" // the test server's default user is "nopass": any password is accepted
      const config = configLayer({ REDIS_URL: url.toString() })
      const health = Health.layer.pipe(Layer.provide(config))
      const services = Layer.mergeAll(StateStore.layer, health).pipe(
        Layer.provide(Layer.mergeAll(config, health, Metrics.layer)),
        Layer.provide(logs.layer)
      )
      yield* Effect.gen(function*() {
        const store = (yield* StateStore).namespace(`${RUN}:layer`)
        yield* store.set("k", "v", { ttlMs: 5_000 })
        assert.deepStrictEqual(yield* store.get("k"), Option.some("v"))
        const readiness = yield* (yield* Health).readiness
        assert.deepInclude(readiness.dependencies["redis"], { status: "up", critical: true })
      }).pipe(Effect.provide(services))
      assert.include(logs.lines, `state store backend: redis (redis://default:***@${url.host})`)
      assert.notInclude(logs.lines.join("\n"), "secretpw")
    }))

  it.live("uses memory without REDIS_URL and lists an always-up state_store check", () =>
    Effect.gen(function*() {
      const logs = captureLogs()
      const health = Health.layer
      const services = Layer.merge(StateStore.layer.pipe(Layer.provide(Layer.merge(health, Metrics.layer))), health).pipe(
        Layer.provide(configLayer({ REDIS_URL: "" })),
        Layer.provide(logs.layer)
      )
      yield* Effect.gen(function*() {
        const store = yield* StateStore
        yield* store.set("k", "v")
        assert.deepStrictEqual(yield* store.get("k"), Option.some("v"))
        const readiness = yield* (yield* Health).readiness
        const listed = Object.entries(readiness.dependencies).map(([name, d]) => [name, d.status, d.critical])
        // The seed's dependencies are all listed, none configured here (and, unconfigured, none critical by default).
        assert.deepStrictEqual(listed, [
          ["postgres", "unconfigured", false],
          ["redis", "unconfigured", false],
          ["dashboard", "unconfigured", false],
          ["ai_core", "unconfigured", false],
          ["webrtc_server", "unconfigured", false],
          ["communication_service", "unconfigured", false],
          ["state_store", "up", false]
        ])
      }).pipe(Effect.provide(services))
      assert.include(logs.lines, "state store backend: in-memory")
    }))
})
