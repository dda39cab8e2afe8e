import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { makeLruCache } from "../../src/layers/participants/cache.ts"

const counted = (max: number) => {
  const reads: Array<boolean> = []
  return { cache: makeLruCache<string>(max, (hit) => reads.push(hit)), reads }
}

describe("participant state cache (LRU)", () => {
  it.effect("hits after a load, evicts the least recently used, counts every read", () =>
    Effect.gen(function*() {
      const { cache, reads } = counted(2)
      assert.strictEqual(yield* cache.get("a", Effect.succeed("A")), "A")
      assert.strictEqual(yield* cache.get("a", Effect.succeed("other")), "A")
      yield* cache.get("b", Effect.succeed("B"))
      yield* cache.get("a", Effect.succeed("other")) // a is now the most recent
      yield* cache.get("c", Effect.succeed("C")) // evicts b
      assert.strictEqual(yield* cache.get("b", Effect.succeed("B2")), "B2")
      assert.strictEqual(yield* cache.get("c", Effect.succeed("other")), "C")
      assert.deepStrictEqual(reads, [false, true, false, true, false, false, true])
      assert.deepStrictEqual(cache.stats(), { cached: 2, hits: 3, misses: 4 })
    }))

  it.effect("a load in flight when the key is invalidated does not store what it read", () =>
    Effect.gen(function*() {
      const { cache } = counted(10)
      const gate = yield* Deferred.make<void>()
      const slow = yield* Effect.forkChild(cache.get("k", Effect.as(Deferred.await(gate), "before the write")))
      yield* Effect.yieldNow
      yield* cache.invalidate("k")
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Fiber.join(slow), "before the write")
      assert.strictEqual(yield* cache.get("k", Effect.succeed("after the write")), "after the write")
      assert.strictEqual(yield* cache.get("k", Effect.succeed("unused")), "after the write")
    }))

  it.effect("size 0 caches nothing; a failed load stores nothing", () =>
    Effect.gen(function*() {
      const { cache } = counted(0)
      yield* cache.get("a", Effect.succeed("A"))
      assert.strictEqual(yield* cache.get("a", Effect.succeed("A2")), "A2")
      assert.deepStrictEqual(cache.stats(), { cached: 0, hits: 0, misses: 2 })
      const other = counted(5).cache
      assert.strictEqual(yield* Effect.flip(other.get("x", Effect.fail("down"))), "down")
      assert.strictEqual(yield* other.get("x", Effect.succeed("X")), "X")
      assert.strictEqual(other.stats().cached, 1)
    }))
})
