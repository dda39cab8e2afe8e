import { afterAll, assert, layer } from "@effect/vitest"
import { TestClock } from "effect/testing"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, Schema } from "effect"
import { HttpRouter } from "effect/http"
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup } from "effect/http-api"
import { createServer } from "node:http"
import { Health } from "../../src/layers/Health.ts"
import { Metrics } from "../../src/layers/Metrics.ts"
import { RateLimitLive } from "../../src/adapters/http/rate-limit.ts"
import { type Decision, RateLimit, RateLimiter, type RateLimitPolicy } from "../../src/layers/RateLimiter.ts"
import { Redis } from "../../src/layers/Redis.ts"
import { StateStore, StateStoreError } from "../../src/layers/StateStore.ts"
import { baseUrl } from "../support/http.ts"
import { configLayer, deleteKeys, runPrefix } from "../support/redis.ts"

const RUN = runPrefix()
/** Long enough that no test crosses a window boundary (windows are aligned to the epoch). */
const HOUR = 3_600_000
const PROBE_POLICY: RateLimitPolicy = { limit: 3, windowMs: HOUR }

// A probe endpoint behind the IP-keyed middleware, served on a free port.
class ProbeGroup extends HttpApiGroup.make("probe")
  .add(HttpApiEndpoint.get("ping", "/probe/ping", { success: Schema.String }))
  .middleware(RateLimit)
{}
class ProbeApi extends HttpApi.make("probe").add(ProbeGroup) {}
const ProbeHandlers = HttpApiBuilder.group(ProbeApi, "probe", (handlers) => Effect.succeed(handlers.handle("ping", () => Effect.succeed("pong"))))

const probeServer = HttpRouter.serve(
  HttpApiBuilder.layer(ProbeApi).pipe(Layer.provide(ProbeHandlers), Layer.provideMerge(RateLimitLive("auth"))),
  { disableLogger: true }
).pipe(Layer.provideMerge(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" })))

/** Each run (and each backend) under a prefix of its own, so runs on one Redis never share a budget. */
const isolated = (label: string) => Layer.effect(StateStore, StateStore.use((store) => Effect.succeed(store.namespace(`${RUN}:${label}`))))

const fetchPing = Effect.flatMap(baseUrl, (url) => Effect.promise(() => fetch(`${url}/probe/ping`)))

const rejectsInvalid = (effect: Effect.Effect<Decision, StateStoreError>) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(effect)
    assert.instanceOf(error, StateStoreError)
    assert.strictEqual(error.reason, "InvalidArgument")
  })

/** Sleeps until just after the start of the next window of `windowMs`. */
const alignTo = (windowMs: number) => Effect.sleep(windowMs - (Date.now() % windowMs) + 10)

const contract = (name: string, label: string, storeLayer: Layer.Layer<StateStore, unknown>) => {
  const limiter = RateLimiter.layerWith({ auth: PROBE_POLICY }).pipe(
    Layer.provideMerge(Layer.merge(Layer.provide(isolated(label), storeLayer), Metrics.layer))
  )
  const all = probeServer.pipe(Layer.provideMerge(limiter))

  layer(all, { excludeTestServices: true, timeout: "30 seconds" })(name, (it) => {
    it.effect("of 50 concurrent calls with limit 20, exactly 20 are allowed", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter
        const policy = { limit: 20, windowMs: HOUR }
        const decisions = yield* Effect.all(
          Array.from({ length: 50 }, () => limiter.consume("burst:alice", policy)),
          { concurrency: "unbounded" }
        )
        const allowed = decisions.filter((d) => d.allowed)
        assert.strictEqual(allowed.length, 20)
        assert.strictEqual(decisions.filter((d) => !d.allowed).length, 30)
        assert.deepStrictEqual(allowed.map((d) => d.remaining).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i))
        for (const d of decisions.filter((d) => !d.allowed)) {
          assert.strictEqual(d.remaining, 0)
          assert.strictEqual(d.limit, 20)
          assert.isTrue(d.retryAfterSeconds >= 1 && d.retryAfterSeconds <= 3600, `retryAfter ${d.retryAfterSeconds}`)
        }
        assert.isFalse((yield* limiter.consume("burst:alice", policy)).allowed)
      }))

    it.effect("the window resets after windowMs", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter
        const policy = { limit: 2, windowMs: 300 }
        yield* alignTo(policy.windowMs)
        assert.isTrue((yield* limiter.consume("reset:bob", policy)).allowed)
        assert.isTrue((yield* limiter.consume("reset:bob", policy)).allowed)
        const rejected = yield* limiter.consume("reset:bob", policy)
        assert.isFalse(rejected.allowed)
        assert.isTrue(rejected.resetMs > 0 && rejected.resetMs <= 300, `resetMs ${rejected.resetMs}`)
        assert.strictEqual(rejected.retryAfterSeconds, 1)
        yield* Effect.sleep(rejected.resetMs + 20)
        const next = yield* limiter.consume("reset:bob", policy)
        assert.isTrue(next.allowed)
        assert.strictEqual(next.remaining, 1)
      }))

    it.effect("different subjects and classes do not share a budget", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter
        const policy = { limit: 1, windowMs: HOUR }
        assert.isTrue((yield* limiter.consume("session:carol", policy)).allowed)
        assert.isFalse((yield* limiter.consume("session:carol", policy)).allowed)
        assert.isTrue((yield* limiter.consume("session:dave", policy)).allowed)
        assert.isTrue((yield* limiter.consume("default:carol", policy)).allowed)
        // check() uses each class's policy: the defaults, or the override for auth.
        const session = yield* limiter.check("session", "carol")
        assert.strictEqual(session.limit, 300)
        assert.strictEqual(session.remaining, 299)
        assert.strictEqual((yield* limiter.check("default", "carol")).limit, 500)
        assert.strictEqual((yield* limiter.check("auth", "10.9.9.9")).limit, 3)
      }))

    it.effect("a minute and an hour window do not share a count, even at the top of the hour where both start", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter
        yield* TestClock.setTime(Date.UTC(2026, 11, 1, 21, 0, 0, 500))
        assert.isTrue((yield* limiter.consume("window:frank", { limit: 1, windowMs: HOUR })).allowed)
        const minute = yield* limiter.consume("window:frank", { limit: 1, windowMs: 60_000 })
        assert.isTrue(minute.allowed)
        assert.strictEqual(minute.remaining, 0)
      }).pipe(Effect.provide(TestClock.layer())))

    it.effect("invalid policies fail with a typed error and count nothing", () =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter
        yield* rejectsInvalid(limiter.consume("bad:erin", { limit: 0, windowMs: 1000 }))
        yield* rejectsInvalid(limiter.consume("bad:erin", { limit: -5, windowMs: 1000 }))
        yield* rejectsInvalid(limiter.consume("bad:erin", { limit: 1.5, windowMs: 1000 }))
        yield* rejectsInvalid(limiter.consume("bad:erin", { limit: 5, windowMs: 0 }))
        yield* rejectsInvalid(limiter.consume("bad:erin", { limit: 5, windowMs: -1000 }))
        yield* rejectsInvalid(limiter.consume("", { limit: 5, windowMs: 1000 }))
        const first = yield* limiter.consume("bad:erin", { limit: 5, windowMs: HOUR })
        assert.isTrue(first.allowed)
        assert.strictEqual(first.remaining, 4)
      }))

    it.effect("the middleware answers 200 with RateLimit-* headers, then 429 with Retry-After", () =>
      Effect.gen(function*() {
        for (const remaining of [2, 1, 0]) {
          const ok = yield* fetchPing
          assert.strictEqual(ok.status, 200)
          assert.strictEqual(yield* Effect.promise(() => ok.json()), "pong")
          assert.strictEqual(ok.headers.get("ratelimit-limit"), "3")
          assert.strictEqual(ok.headers.get("ratelimit-remaining"), String(remaining))
          const reset = Number(ok.headers.get("ratelimit-reset"))
          assert.isTrue(reset >= 1 && reset <= 3600, `reset ${reset}`)
          assert.isNull(ok.headers.get("retry-after"))
        }
        const limited = yield* fetchPing
        assert.strictEqual(limited.status, 429)
        assert.include(limited.headers.get("content-type") ?? "", "application/problem+json")
        assert.strictEqual(limited.headers.get("ratelimit-limit"), "3")
        assert.strictEqual(limited.headers.get("ratelimit-remaining"), "0")
        const retryAfter = Number(limited.headers.get("retry-after"))
        assert.isTrue(retryAfter >= 1 && retryAfter <= 3600, `retry-after ${retryAfter}`)
        assert.strictEqual(limited.headers.get("ratelimit-reset"), String(retryAfter))
        const body: unknown = yield* Effect.promise(() => limited.json())
        assert.deepInclude(body, { status: 429, title: "Too Many Requests", instance: "/probe/ping", retryAfterSeconds: retryAfter })

        const { registry } = yield* Metrics
        const text = yield* Effect.promise(() => registry.getSingleMetricAsString("auralink_rate_limit_rejections_total"))
        assert.match(text, /auralink_rate_limit_rejections_total\{class="auth"\} [1-9]/)
        assert.match(text, /auralink_rate_limit_rejections_total\{class="burst"\} 3[01]/)
      }))
  })
}

contract("RateLimiter (in-memory store)", "memory", StateStore.layerMemory)
const redisStore = StateStore.layerRedis.pipe(Layer.provide(Redis.layer), Layer.provide(Layer.mergeAll(configLayer(), Health.layerTest, Metrics.layer)))
contract("RateLimiter (redis store)", "redis", redisStore)
afterAll(() => deleteKeys(`auralink:${RUN}:*`))

layer(Layer.merge(StateStore.layerMemory, Metrics.layer))("RateLimiter layer", (it) => {
  it.effect("refuses to build with an invalid policy override", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(RateLimiter.layerWith({ session: { limit: 0, windowMs: 60_000 } })))
      assert.instanceOf(error, StateStoreError)
      assert.strictEqual(error.reason, "InvalidArgument")
    }))
})
