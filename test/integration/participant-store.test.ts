import { afterAll, assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Option, Scope } from "effect"
import { AppConfig } from "../../src/layers/Config.ts"
import { Health } from "../../src/layers/Health.ts"
import { Metrics } from "../../src/layers/Metrics.ts"
import { ParticipantStore, ParticipantStoreError } from "../../src/layers/ParticipantStore.ts"
import { Redis } from "../../src/layers/Redis.ts"
import { StateStore } from "../../src/layers/StateStore.ts"
import type { MediaCapabilities, QosSample } from "../../src/schemas/participants.ts"
import { configLayer, deleteKeys, runPrefix } from "../support/redis.ts"

const RUN = runPrefix()
const HISTORY_CAP = 4

afterAll(() => deleteKeys(`auralink:${RUN}:*`))

const capabilities = (maxBitrate: number): MediaCapabilities => ({
  videoCodecs: ["VP8"],
  audioCodecs: ["Opus"],
  maxResolution: "720p",
  maxFrameRate: 30,
  maxBitrate,
  supportsAic: false,
  supportsSimulcast: true
})
const sample = (packetLossPercent: number, at: number): QosSample => ({
  packetLossPercent,
  jitterMs: 10,
  rttMs: 40,
  bandwidthKbps: 1500,
  mosScore: 4.2,
  mosSource: "reported",
  source: "reported",
  timestamp: new Date(at).toISOString()
})

/** The StateStore below seen under this run's prefix (`auralink:<run>:`), as one service's would be under `auralink:`. */
const underRunPrefix = Layer.effect(StateStore, StateStore.use((store) => Effect.succeed(store.namespace(RUN))))

/** One instance: a ParticipantStore over `store`, with its own metrics registry and /status sections. */
const instanceOver = <E>(store: Layer.Layer<StateStore, E, Health | AppConfig | Metrics>, settings: Record<string, string> = {}) =>
  ParticipantStore.layer.pipe(
    Layer.provideMerge(store),
    Layer.provideMerge(Layer.mergeAll(Metrics.layer, Health.layer)),
    Layer.provide(configLayer({ QOS_HISTORY_CAP: String(HISTORY_CAP), ...settings }))
  )

/** A process of its own on the real Redis: its own connections (command and subscriber), store and cache. */
const redisInstance = instanceOver(underRunPrefix.pipe(Layer.provide(StateStore.layerRedis), Layer.provide(Redis.layer)))

/** Builds `layer` apart from anything built before (a memo map of its own), for the test's scope. */
const start = <A, E, R>(layer: Layer.Layer<A, E, R>) =>
  Effect.gen(function*() {
    return yield* Layer.buildWithMemoMap(layer, yield* Layer.makeMemoMap, yield* Scope.Scope)
  })

const handle = (context: Context.Context<ParticipantStore | Metrics | Health>) => {
  const store = Context.get(context, ParticipantStore)
  const reads = Effect.gen(function*() {
    const metric = Context.get(context, Metrics).registry.getSingleMetric("auralink_participant_state_reads_total")
    const values = metric === undefined ? [] : (yield* Effect.promise(() => metric.get())).values
    const of = (result: string) => values.find((v) => v.labels["result"] === result)?.value ?? 0
    return { hit: of("hit"), miss: of("miss") }
  })
  const section = Effect.map(Context.get(context, Health).sections, (all) => {
    const value: unknown = all["participants"]
    return typeof value === "object" && value !== null ? Object.fromEntries(Object.entries(value)) : {}
  })
  return { store, reads, section }
}

const identity = (name: string) => `${name}-${crypto.randomUUID().slice(0, 8)}`

describe("ParticipantStore on the real Redis, two instances", () => {
  it.live("a write through one drops the other's cached copy within 100 ms: hit before, miss after, then the new value", () =>
    Effect.gen(function*() {
      const a = handle(yield* start(redisInstance))
      const b = handle(yield* start(redisInstance))
      const who = identity("shared")
      yield* a.store.setCapabilities(who, capabilities(1000), Date.now())
      yield* Effect.sleep("50 millis") // this write's invalidation reaches b before b caches anything

      const first = yield* b.store.read(who)
      assert.deepStrictEqual(first.capabilities, Option.some(capabilities(1000)))
      const warm = yield* b.reads
      assert.deepStrictEqual((yield* b.store.read(who)).capabilities, Option.some(capabilities(1000)))
      assert.deepStrictEqual(yield* b.reads, { hit: warm.hit + 1, miss: warm.miss }, "the second read is a cache hit")
      const cachedBefore = Number((yield* b.section)["cached"])
      assert.isAtLeast(cachedBefore, 1)

      yield* a.store.setCapabilities(who, capabilities(2000), Date.now())
      const written = performance.now()
      // Polled every 2 ms: b's copy is gone once the invalidation reached it.
      let waited = 0
      while (Number((yield* b.section)["cached"]) >= cachedBefore && waited < 100) {
        yield* Effect.sleep("2 millis")
        waited = performance.now() - written
      }
      assert.isBelow(waited, 100, "b dropped its copy within 100 ms")

      const before = yield* b.reads
      const after = yield* b.store.read(who)
      assert.deepStrictEqual(after.capabilities, Option.some(capabilities(2000)))
      assert.deepStrictEqual(yield* b.reads, { hit: before.hit, miss: before.miss + 1 }, "the read after the write is a miss")
      // The writer's own copy went at once (no waiting for the message).
      assert.deepStrictEqual((yield* a.store.read(who)).capabilities, Option.some(capabilities(2000)))
    }))

  it.live("every kind of write invalidates: QoS, presence, touch", () =>
    Effect.gen(function*() {
      const a = handle(yield* start(redisInstance))
      const b = handle(yield* start(redisInstance))
      const who = identity("kinds")
      const t0 = Date.parse("2030-01-01T00:00:00Z")
      yield* a.store.touch(who, t0)
      assert.deepStrictEqual((yield* b.store.read(who)).lastSeenAt, Option.some(new Date(t0).toISOString()))

      const steps = [
        a.store.appendQos(who, sample(1, t0 + 1000), t0 + 1000),
        a.store.setPresence(who, "away", t0 + 2000),
        a.store.touch(who, t0 + 3000)
      ]
      for (const [i, write] of steps.entries()) {
        yield* b.store.read(who) // cached
        yield* write
        const expected = new Date(t0 + (i + 1) * 1000).toISOString()
        let seen = Option.none<string>()
        for (let tries = 0; tries < 50 && !Option.contains(seen, expected); tries++) {
          seen = (yield* b.store.read(who)).lastSeenAt
          if (!Option.contains(seen, expected)) yield* Effect.sleep("2 millis")
        }
        assert.deepStrictEqual(seen, Option.some(expected), `write ${i} reached b`)
      }
      const state = yield* b.store.read(who)
      assert.deepStrictEqual(Option.map(state.latestQos, (q) => q.packetLossPercent), Option.some(1))
      assert.deepStrictEqual(state.presence, Option.some({ setStatus: "away" as const, updatedAt: new Date(t0 + 2000).toISOString() }))
      // Touch changes when it was heard from, not when its state changed.
      assert.deepStrictEqual(state.updatedAt, Option.some(new Date(t0 + 2000).toISOString()))
    }))

  it.live("QoS history: capped at QOS_HISTORY_CAP, newest first, `limit` newest", () =>
    Effect.gen(function*() {
      const { store } = handle(yield* start(redisInstance))
      const who = identity("history")
      for (let i = 1; i <= HISTORY_CAP + 3; i++) yield* store.appendQos(who, sample(i, Date.now()), Date.now())
      const loss = (samples: ReadonlyArray<QosSample>) => samples.map((s) => s.packetLossPercent)
      assert.deepStrictEqual(loss(yield* store.qosHistory(who, 100)), [7, 6, 5, 4])
      assert.deepStrictEqual(loss(yield* store.qosHistory(who, 2)), [7, 6])
      assert.deepStrictEqual(yield* store.qosHistory(who, 0), [])
      assert.deepStrictEqual(yield* store.qosHistory(identity("nobody"), 10), [])
    }))

  it.live("values are decoded when read: a corrupt one is a ParticipantStoreError, and a bad one is never written", () =>
    Effect.gen(function*() {
      const context = yield* start(redisInstance)
      const { store } = handle(context)
      const raw = Context.get(context, StateStore).namespace("participants")
      const who = identity("corrupt")

      yield* raw.hset(`state:${who}`, { capabilities: "{not json" })
      const corrupt = yield* Effect.flip(store.read(who))
      assert.instanceOf(corrupt, ParticipantStoreError)
      assert.strictEqual(corrupt.reason, "Corrupt")
      yield* raw.hset(`state:${who}`, { capabilities: JSON.stringify({ ...capabilities(1), maxFrameRate: -1 }) })
      assert.strictEqual((yield* Effect.flip(store.read(who))).reason, "Corrupt")

      const other = identity("corrupt-qos")
      yield* raw.listPush(`qos:${other}`, "[1,2]", { cap: 10 })
      assert.strictEqual((yield* Effect.flip(store.qosHistory(other, 10))).reason, "Corrupt")
      assert.strictEqual((yield* Effect.flip(store.read(other))).reason, "Corrupt")

      const clean = identity("clean")
      const refused = yield* Effect.flip(store.appendQos(clean, { ...sample(1, Date.now()), jitterMs: Number.NaN }, Date.now()))
      assert.strictEqual(refused._tag, "ParticipantStoreError")
      assert.deepStrictEqual(yield* raw.listRange(`qos:${clean}`, 0, -1), [])
      const bad = yield* Effect.flip(store.setCapabilities(clean, { ...capabilities(1), maxResolution: "huge" }, Date.now()))
      assert.strictEqual(bad._tag, "ParticipantStoreError")
      assert.deepStrictEqual(yield* raw.hgetAll(`state:${clean}`), {})
    }))
})

describe("ParticipantStore on the in-memory store", () => {
  it.live("two caches over one in-memory store invalidate each other in-process; the cache keeps PARTICIPANT_CACHE_SIZE entries", () =>
    Effect.gen(function*() {
      const shared = yield* start(StateStore.layerMemory)
      const memory = Layer.succeedContext(shared)
      const a = handle(yield* start(instanceOver(memory, { PARTICIPANT_CACHE_SIZE: "2" })))
      const b = handle(yield* start(instanceOver(memory, { PARTICIPANT_CACHE_SIZE: "2" })))
      const who = identity("mem")
      yield* a.store.setPresence(who, "idle", Date.now())
      yield* b.store.read(who)
      yield* a.store.setPresence(who, "away", Date.now())
      let status = Option.none<string>()
      for (let tries = 0; tries < 50 && !Option.contains(status, "away"); tries++) {
        status = Option.map((yield* b.store.read(who)).presence, (p) => p.setStatus)
        if (!Option.contains(status, "away")) yield* Effect.sleep("2 millis")
      }
      assert.deepStrictEqual(status, Option.some("away"))

      // LRU: reading a third identity evicts the least recently used one.
      const [x, y, z] = [identity("x"), identity("y"), identity("z")]
      for (const id of [x, y, z]) yield* a.store.touch(id, Date.now())
      yield* Effect.sleep("20 millis") // the writes' own invalidation messages arrive first
      for (const id of [x, y, x, z]) yield* b.store.read(id)
      assert.strictEqual((yield* b.section)["cached"], 2)
      const before = yield* b.reads
      yield* b.store.read(x) // kept: used after y
      yield* b.store.read(y) // evicted by z
      assert.deepStrictEqual(yield* b.reads, { hit: before.hit + 1, miss: before.miss + 1 })
      const section = yield* b.section
      assert.hasAllKeys(section, ["cached", "cache_hits", "cache_misses", "cache_hit_pct"])
      assert.closeTo(
        Number(section["cache_hit_pct"]),
        Number(section["cache_hits"]) / (Number(section["cache_hits"]) + Number(section["cache_misses"])) * 100,
        0.05
      )
    }))
})
