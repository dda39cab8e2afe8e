import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { keepConnected } from "../../src/layers/resilience/reconnect.ts"

describe("keepConnected (the AI Core and ASR reconnect loop)", () => {
  it.effect("retries a failing connection on the backoff schedule, reconnects at once after one that worked, counts failures per outage", () =>
    Effect.gen(function*() {
      // Connections: fail, fail, work (ends "a"), work (ends "b"), fail, then work forever.
      const script: Array<"fail" | "a" | "b" | "c"> = ["fail", "fail", "a", "b", "fail", "c"]
      const attempts: Array<number> = []
      const startedAt: Array<number> = []
      const ended: Array<[string, number]> = []
      const connection = Effect.gen(function*() {
        startedAt.push(yield* Effect.clockWith((clock) => clock.currentTimeMillis))
        const next = script.shift() ?? "c"
        if (next === "fail") return yield* Effect.fail("refused")
        if (next === "c") return yield* Effect.never
        return next
      })
      const fiber = yield* Effect.forkChild(keepConnected(connection, {
        backoff: Schedule.spaced("100 millis"),
        onFailure: (_, attempt) => Effect.sync(() => attempts.push(attempt)),
        onEnded: (a, failuresBefore) => Effect.sync(() => ended.push([a, failuresBefore]))
      }))
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(attempts, [1, 2, 1])
      assert.deepStrictEqual(ended, [["a", 2], ["b", 0]])
      // Waits only after failures: 0, 100, 200, 200 (at once after "a"), 300 (after the failure following "b").
      assert.deepStrictEqual(startedAt, [0, 100, 200, 200, 200, 300])
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("stops when `stop` says so after a connection ended (the client is closing)", () =>
    Effect.gen(function*() {
      let closing = false
      let runs = 0
      const connection = Effect.sync(() => {
        runs++
        closing = runs === 3
        return runs
      })
      yield* keepConnected(connection, { backoff: Schedule.spaced("1 second"), stop: () => closing })
      assert.strictEqual(runs, 3)
    }))
})
