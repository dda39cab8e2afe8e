import { assert, layer } from "@effect/vitest"
import { Context, Effect, Layer, Option } from "effect"
import { AuraIdResolver } from "../../src/layers/AuraIdResolver.ts"
import { AppConfig } from "../../src/layers/Config.ts"
import { Health } from "../../src/layers/Health.ts"
import { Metrics } from "../../src/layers/Metrics.ts"
import { StateStore } from "../../src/layers/StateStore.ts"
import { record } from "../support/auth.ts"
import { FakeCommunicationService } from "../support/fake-communication-service.ts"
import { startedFake } from "../support/fake-server.ts"

const API_KEY = "resilience-key"
const TIMEOUT_MS = 200
const BREAKER_FAILURES = 3
const BREAKER_RESET_MS = 400

class Fake extends Context.Service<Fake, FakeCommunicationService>()("test/AuraIdResilienceFake") {}

const FakeLayer = Layer.effect(
  Fake,
  startedFake(() => {
    const fake = new FakeCommunicationService({ apiKey: API_KEY })
    fake.seed(10)
    return fake
  })
)

// The resolver alone over the in-memory state store: what is tested here is the client's deadline, retries and breaker.
const Resolver = Layer.unwrap(Fake.use((fake) =>
  Effect.succeed(AuraIdResolver.layer.pipe(
    Layer.provideMerge(StateStore.layerMemory),
    Layer.provideMerge(Layer.mergeAll(Metrics.layer, Health.layer)),
    Layer.provideMerge(AppConfig.layerFrom({
      COMMUNICATION_SERVICE_URL: fake.url,
      COMMUNICATION_SERVICE_API_KEY: API_KEY,
      COMMUNICATION_SERVICE_TIMEOUT_MS: String(TIMEOUT_MS),
      COMMUNICATION_SERVICE_RETRIES: "1",
      COMMUNICATION_SERVICE_BREAKER_FAILURES: String(BREAKER_FAILURES),
      COMMUNICATION_SERVICE_BREAKER_RESET_MS: String(BREAKER_RESET_MS)
    }))
  ))
)).pipe(Layer.provideMerge(FakeLayer))

const sleep = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

layer(Resolver, { timeout: 30_000, excludeTestServices: true })("AuraID client resilience", (it) => {
  it.effect("a slow answer times out per attempt, is retried once, then fails", () =>
    Effect.gen(function*() {
      const fake = yield* Fake
      const resolver = yield* AuraIdResolver
      fake.resetCounters()
      fake.latencyMs = TIMEOUT_MS * 3
      const started = performance.now()
      const slow = yield* Effect.flip(resolver.resolve("aura:user-1"))
      const elapsed = performance.now() - started
      fake.latencyMs = 0
      assert.include(slow.reason, `no answer within ${TIMEOUT_MS} ms`)
      assert.strictEqual(fake.callCount("get"), 2, "one attempt and one retry")
      assert.isBelow(elapsed, TIMEOUT_MS * 2 + 400)
      // The service now answers: the next resolve succeeds (the breaker counted one failed call).
      assert.isTrue(Option.isSome(yield* resolver.resolve("aura:user-1")))
    }))

  it.effect("the breaker opens after consecutive failures (no more upstream calls), then a probe closes it", () =>
    Effect.gen(function*() {
      const fake = yield* Fake
      const resolver = yield* AuraIdResolver
      fake.resetCounters()
      fake.failNext(1000, 503)
      for (let i = 0; i < BREAKER_FAILURES; i++) yield* Effect.flip(resolver.resolve(`aura:user-${2 + i}`))
      const calls = fake.callCount("get")
      assert.strictEqual(calls, BREAKER_FAILURES * 2, "each failed call was retried once")
      const open = yield* Effect.flip(resolver.resolve("aura:user-9"))
      assert.include(open.reason, "circuit breaker communication_service is open")
      assert.strictEqual(fake.callCount("get"), calls, "an open breaker does not call out")
      const status = yield* Health.use((h) => h.sections)
      assert.deepInclude(record(status["auraid"]), { breaker: "open" })
      fake.failNext(0)
      yield* sleep(BREAKER_RESET_MS + 50)
      assert.isTrue(Option.isSome(yield* resolver.resolve("aura:user-9")))
      assert.strictEqual(fake.callCount("get"), calls + 1, "one probe")
    }))
})
