import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { Registry } from "prom-client"
import { breakerStateGauge, type CircuitState, makeCircuitBreaker } from "../../src/layers/resilience/circuitBreaker.ts"

/** One synchronous call through the breaker: admitted and settled with `outcome`, or turned away. */
const call = (breaker: Effect.Success<ReturnType<typeof makeCircuitBreaker>>, outcome: "success" | "failure" | "ignored") => {
  const permit = breaker.tryAcquire()
  if (permit._tag === "Rejected") return "rejected" as const
  breaker.release(permit, outcome)
  return permit.probe ? "probe" as const : "run" as const
}

describe("circuit breaker, synchronous admission (tryAcquire / release)", () => {
  it.effect("opens after exactly N consecutive failures, then turns callers away with the time to the probe", () =>
    Effect.gen(function*() {
      const breaker = yield* makeCircuitBreaker({ name: "t", failureThreshold: 5, resetTimeout: "60 seconds" })
      for (let i = 0; i < 4; i++) assert.strictEqual(call(breaker, "failure"), "run")
      assert.strictEqual(yield* breaker.state, "closed")
      assert.strictEqual(call(breaker, "failure"), "run")
      assert.strictEqual(yield* breaker.state, "open")
      yield* TestClock.adjust("15 seconds")
      const rejected = breaker.tryAcquire()
      assert.deepStrictEqual(rejected, { _tag: "Rejected", retryInMs: 45_000 })
    }))

  it.effect("a success in between resets the count", () =>
    Effect.gen(function*() {
      const breaker = yield* makeCircuitBreaker({ name: "t", failureThreshold: 2, resetTimeout: "1 second" })
      call(breaker, "failure")
      call(breaker, "success")
      call(breaker, "failure")
      assert.strictEqual(yield* breaker.state, "closed")
      call(breaker, "failure")
      assert.strictEqual(yield* breaker.state, "open")
    }))

  it.effect("after the reset exactly one probe is admitted while it runs; its success closes the breaker", () =>
    Effect.gen(function*() {
      const breaker = yield* makeCircuitBreaker({ name: "t", failureThreshold: 1, resetTimeout: "10 seconds" })
      call(breaker, "failure")
      yield* TestClock.adjust("9999 millis")
      assert.strictEqual(breaker.tryAcquire()._tag, "Rejected")
      yield* TestClock.adjust("1 millis")
      const probe = breaker.tryAcquire()
      assert.deepStrictEqual(probe, { _tag: "Admitted", probe: true })
      assert.strictEqual(yield* breaker.state, "half_open")
      assert.deepStrictEqual(breaker.tryAcquire(), { _tag: "Rejected", retryInMs: 0 }, "a second caller while the probe runs")
      if (probe._tag === "Admitted") breaker.release(probe, "success")
      assert.strictEqual(yield* breaker.state, "closed")
      assert.strictEqual(call(breaker, "success"), "run")
    }))

  it.effect("a failed probe reopens for another full reset; an ignored one lets the next caller probe", () =>
    Effect.gen(function*() {
      const breaker = yield* makeCircuitBreaker({ name: "t", failureThreshold: 1, resetTimeout: "10 seconds" })
      call(breaker, "failure")
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(call(breaker, "failure"), "probe")
      assert.strictEqual(yield* breaker.state, "open")
      yield* TestClock.adjust("9 seconds")
      assert.strictEqual(call(breaker, "success"), "rejected")
      yield* TestClock.adjust("1 second")
      assert.strictEqual(call(breaker, "ignored"), "probe")
      assert.strictEqual(yield* breaker.state, "open")
      assert.strictEqual(call(breaker, "success"), "probe", "at once, no new wait")
      assert.strictEqual(yield* breaker.state, "closed")
    }))

  it.effect("shares its state with protect, and reports transitions on the gauge", () =>
    Effect.gen(function*() {
      const registry = new Registry()
      const seen: Array<CircuitState> = []
      const hook = breakerStateGauge(registry, "sync")
      const breaker = yield* makeCircuitBreaker({
        name: "sync",
        failureThreshold: 2,
        resetTimeout: "1 second",
        onStateChange: (next, previous) => Effect.andThen(hook(next, previous), Effect.sync(() => seen.push(next)))
      })
      yield* Effect.flip(breaker.protect(Effect.fail("boom")))
      call(breaker, "failure")
      assert.strictEqual(yield* breaker.state, "open")
      assert.strictEqual((yield* Effect.flip(breaker.protect(Effect.void)))._tag, "CircuitOpen")
      yield* TestClock.adjust("1 second")
      assert.strictEqual(call(breaker, "success"), "probe")
      // The hooks of synchronous transitions run on fibers of their own.
      yield* Effect.yieldNow
      assert.deepStrictEqual(seen, ["open", "half_open", "closed"])
      const text = yield* Effect.promise(() => registry.getSingleMetricAsString("auralink_circuit_breaker_state"))
      assert.include(text, "auralink_circuit_breaker_state{name=\"sync\"} 0")
    }))
})
