import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Ref } from "effect"
import { TestClock } from "effect/testing"
import { Registry } from "prom-client"
import { breakerStateGauge, type CircuitState, CircuitOpen, makeCircuitBreaker } from "../../src/layers/resilience/circuitBreaker.ts"

const failing = Effect.fail("boom" as const)

describe("circuit breaker", () => {
  it.effect("opens after exactly N consecutive failures and then fails fast without running the effect", () =>
    Effect.gen(function*() {
      const breaker = yield* makeCircuitBreaker({ name: "t", failureThreshold: 5, resetTimeout: "60 seconds" })
      const runs = yield* Ref.make(0)
      const counted = Ref.update(runs, (n) => n + 1).pipe(Effect.andThen(failing))
      for (let i = 0; i < 4; i++) {
        assert.strictEqual(yield* Effect.flip(breaker.protect(counted)), "boom")
        assert.strictEqual(yield* breaker.state, "closed")
      }
      assert.strictEqual(yield* Effect.flip(breaker.protect(counted)), "boom")
      assert.strictEqual(yield* breaker.state, "open")
      const fast = yield* Effect.flip(breaker.protect(counted))
      assert.instanceOf(fast, CircuitOpen)
      assert.strictEqual(fast instanceof CircuitOpen ? fast.retryInMs : -1, 60_000)
      assert.strictEqual(yield* Ref.get(runs), 5)
    }))

  it.effect("a success resets the consecutive count", () =>
    Effect.gen(function*() {
      const breaker = yield* makeCircuitBreaker({ name: "t", failureThreshold: 3, resetTimeout: "1 second" })
      yield* Effect.flip(breaker.protect(failing))
      yield* Effect.flip(breaker.protect(failing))
      yield* breaker.protect(Effect.void)
      yield* Effect.flip(breaker.protect(failing))
      yield* Effect.flip(breaker.protect(failing))
      assert.strictEqual(yield* breaker.state, "closed")
      yield* Effect.flip(breaker.protect(failing))
      assert.strictEqual(yield* breaker.state, "open")
    }))

  it.effect("stays open for resetTimeout, then one probe: success closes", () =>
    Effect.gen(function*() {
      const breaker = yield* makeCircuitBreaker({ name: "t", failureThreshold: 1, resetTimeout: "60 seconds" })
      yield* Effect.flip(breaker.protect(failing))
      yield* TestClock.adjust("59999 millis")
      assert.instanceOf(yield* Effect.flip(breaker.protect(Effect.void)), CircuitOpen)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* breaker.protect(Effect.succeed(42)), 42)
      assert.strictEqual(yield* breaker.state, "closed")
    }))

  it.effect("a failed probe reopens for another full resetTimeout", () =>
    Effect.gen(function*() {
      const breaker = yield* makeCircuitBreaker({ name: "t", failureThreshold: 2, resetTimeout: "10 seconds" })
      yield* Effect.flip(breaker.protect(failing))
      yield* Effect.flip(breaker.protect(failing))
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(yield* Effect.flip(breaker.protect(failing)), "boom")
      assert.strictEqual(yield* breaker.state, "open")
      yield* TestClock.adjust("9 seconds")
      assert.instanceOf(yield* Effect.flip(breaker.protect(Effect.void)), CircuitOpen)
      yield* TestClock.adjust("1 second")
      yield* breaker.protect(Effect.void)
      assert.strictEqual(yield* breaker.state, "closed")
    }))

  it.effect("lets exactly one probe through under concurrency; the others get CircuitOpen", () =>
    Effect.gen(function*() {
      const breaker = yield* makeCircuitBreaker({ name: "t", failureThreshold: 1, resetTimeout: "1 second" })
      yield* Effect.flip(breaker.protect(failing))
      yield* TestClock.adjust("1 second")
      const gate = yield* Deferred.make<void>()
      const started = yield* Ref.make(0)
      const probe = Ref.update(started, (n) => n + 1).pipe(Effect.andThen(Deferred.await(gate)), Effect.as("probed"))
      const fibers = yield* Effect.forEach(Array.from({ length: 10 }), () => Effect.forkChild(Effect.result(breaker.protect(probe))))
      yield* Effect.yieldNow
      assert.strictEqual(yield* breaker.state, "half_open")
      yield* Deferred.succeed(gate, undefined)
      const results = yield* Effect.forEach(fibers, Fiber.join)
      const successes = results.filter((r) => r._tag === "Success")
      const rejected = results.filter((r) => r._tag === "Failure" && r.failure instanceof CircuitOpen)
      assert.strictEqual(yield* Ref.get(started), 1)
      assert.strictEqual(successes.length, 1)
      assert.strictEqual(rejected.length, 9)
      assert.strictEqual(yield* breaker.state, "closed")
    }))

  it.effect("an interrupted probe does not close it; the next caller probes", () =>
    Effect.gen(function*() {
      const breaker = yield* makeCircuitBreaker({ name: "t", failureThreshold: 1, resetTimeout: "1 second" })
      yield* Effect.flip(breaker.protect(failing))
      yield* TestClock.adjust("1 second")
      const fiber = yield* Effect.forkChild(breaker.protect(Effect.never))
      yield* Effect.yieldNow
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(yield* breaker.state, "open")
      yield* breaker.protect(Effect.void)
      assert.strictEqual(yield* breaker.state, "closed")
    }))

  it.effect("ignores failures isFailure rejects", () =>
    Effect.gen(function*() {
      const breaker = yield* makeCircuitBreaker({
        name: "t",
        failureThreshold: 1,
        resetTimeout: "1 second",
        isFailure: (e) => e !== "client-error"
      })
      yield* Effect.flip(breaker.protect(Effect.fail("client-error")))
      assert.strictEqual(yield* breaker.state, "closed")
    }))

  it.effect("reports transitions and exports them on the gauge", () =>
    Effect.gen(function*() {
      const registry = new Registry()
      const seen: Array<CircuitState> = []
      const hook = breakerStateGauge(registry, "asr")
      const breaker = yield* makeCircuitBreaker({
        name: "asr",
        failureThreshold: 1,
        resetTimeout: "1 second",
        onStateChange: (next, previous) => Effect.andThen(hook(next, previous), Effect.sync(() => seen.push(next)))
      })
      const value = () => Effect.promise(() => registry.getSingleMetricAsString("auralink_circuit_breaker_state"))
      assert.include(yield* value(), "auralink_circuit_breaker_state{name=\"asr\"} 0")
      yield* Effect.flip(breaker.protect(failing))
      assert.include(yield* value(), "auralink_circuit_breaker_state{name=\"asr\"} 2")
      yield* TestClock.adjust("1 second")
      yield* breaker.protect(Effect.void)
      assert.deepStrictEqual(seen, ["open", "half_open", "closed"])
      assert.include(yield* value(), "auralink_circuit_breaker_state{name=\"asr\"} 0")
      // A second breaker on the same registry shares the gauge.
      breakerStateGauge(registry, "aicore")
      assert.include(yield* value(), "auralink_circuit_breaker_state{name=\"aicore\"} 0")
    }))
})
