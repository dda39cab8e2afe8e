import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import { JitterBuffer, type JitterVerdict } from "../../src/programs/audio/jitter.ts"

/** Feeds `arrivals` (sequence, time) through a buffer, polling at each arrival; returns what came out, in order. */
const run = (windowMs: number, arrivals: ReadonlyArray<{ readonly seq: number; readonly at: number }>, endAt?: number) => {
  const buffer = new JitterBuffer<number>(windowMs)
  const out: Array<number> = []
  const verdicts: Array<JitterVerdict> = []
  for (const { seq, at } of arrivals) {
    buffer.poll(at, out)
    verdicts.push(buffer.push(seq & 0xffff, at, seq & 0xffff, out))
  }
  if (endAt === undefined) buffer.flush(out)
  else buffer.poll(endAt, out)
  return { out, verdicts, buffer }
}

/** `count` sequence numbers from `start`, wrapping at 2^16. */
const sequenceFrom = (start: number, count: number) => Array.from({ length: count }, (_, i) => (start + i) & 0xffff)

describe("Opus RTP jitter buffer", () => {
  it("after the first window, releases in-order packets at once, across the 16-bit wrap", () => {
    const buffer = new JitterBuffer<number>(60)
    const out: Array<number> = []
    const [first, ...rest] = sequenceFrom(65530, 12)
    // The stream's first packet waits the window (a packet sent before it may still come).
    assert.strictEqual(buffer.push(first!, 0, first!, out), "Held")
    assert.strictEqual(buffer.deadline(), 60)
    buffer.poll(60, out)
    assert.deepStrictEqual(out, [first])
    for (const [i, seq] of rest.entries()) {
      assert.strictEqual(buffer.push(seq, 60 + i * 20, seq, out), "InOrder")
      assert.strictEqual(out[out.length - 1], seq, "released in the same call")
      assert.isUndefined(buffer.deadline())
    }
  })

  it("the first two packets of a stream swapped lose nothing either", () => {
    const { out, verdicts } = run(60, [{ seq: 101, at: 0 }, { seq: 100, at: 5 }, { seq: 102, at: 20 }], 1000)
    assert.deepStrictEqual(out, [100, 101, 102])
    assert.deepStrictEqual(verdicts, ["Held", "Reordered", "Held"])
  })

  it("two swapped packets lose nothing: the early one waits for the missing one", () => {
    const { out, verdicts, buffer } = run(60, [{ seq: 9, at: -100 }, { seq: 10, at: 0 }, { seq: 12, at: 20 }, { seq: 11, at: 21 }, { seq: 13, at: 40 }], 1000)
    assert.deepStrictEqual(out, [9, 10, 11, 12, 13])
    assert.deepStrictEqual(verdicts, ["Held", "InOrder", "Held", "Reordered", "InOrder"])
    assert.deepStrictEqual([buffer.reordered, buffer.late, buffer.duplicates], [1, 0, 0])
  })

  it("gives up a hole after the window: the gap is the loss, a packet after that is late", () => {
    const buffer = new JitterBuffer<number>(40)
    const out: Array<number> = []
    buffer.push(1, -100, 1, out)
    buffer.poll(-60, out)
    assert.strictEqual(buffer.push(3, 20, 3, out), "Held")
    assert.strictEqual(buffer.deadline(), 60)
    buffer.poll(59, out)
    assert.deepStrictEqual(out, [1])
    buffer.poll(60, out)
    assert.deepStrictEqual(out, [1, 3])
    assert.strictEqual(buffer.push(2, 70, 2, out), "Late")
    assert.strictEqual(buffer.push(3, 71, 3, out), "Duplicate")
    assert.strictEqual(buffer.push(4, 72, 4, out), "InOrder")
    assert.deepStrictEqual(out, [1, 3, 4])
    assert.deepStrictEqual([buffer.reordered, buffer.late, buffer.duplicates], [0, 1, 1])
  })

  it("a window of 0 never holds: a hole is loss at once", () => {
    const { out, verdicts } = run(0, [{ seq: 5, at: 0 }, { seq: 7, at: 20 }, { seq: 6, at: 21 }], 21)
    assert.deepStrictEqual(out, [5, 7])
    assert.deepStrictEqual(verdicts, ["Held", "Held", "Late"]) // "held" for no time
  })

  it("holds at most maxHeld packets: one more gives up the oldest hole", () => {
    const buffer = new JitterBuffer<number>(1000, 3)
    const out: Array<number> = []
    buffer.push(0, -2000, 0, out)
    buffer.poll(-1000, out)
    for (const seq of [2, 3, 4]) buffer.push(seq, 1, seq, out)
    assert.deepStrictEqual(out, [0])
    buffer.push(5, 2, 5, out)
    assert.deepStrictEqual(out, [0, 2, 3, 4, 5])
  })

  it("property: any reordering within the window comes out complete and in order, nothing late", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 2, max: 80 }),
        fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 80, maxLength: 80 }),
        (start, count, displacement) => {
          const seqs = sequenceFrom(start, count)
          // Each packet is sent at 20 ms steps but delayed by up to 2 frames (40 ms < the 60 ms window).
          const arrivals = seqs
            .map((seq, i) => ({ seq, at: i * 20 + displacement[i]! * 20 + i / 1000 }))
            .sort((a, b) => a.at - b.at)
          const { out, buffer } = run(60, arrivals)
          assert.deepStrictEqual(out, seqs)
          assert.strictEqual(buffer.late, 0)
          assert.strictEqual(buffer.duplicates, 0)
        }
      ),
      { numRuns: 300 }
    )
  })

  it("property: with losses and duplicates, the output is increasing, has each kept packet once, and holds back nothing past the window", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.array(fc.constantFrom("keep", "drop", "twice"), { minLength: 1, maxLength: 120 }),
        (start, fates) => {
          const seqs = sequenceFrom(start, fates.length)
          const arrivals = seqs.flatMap((seq, i) =>
            fates[i] === "drop" ? [] : fates[i] === "twice" ? [{ seq, at: i * 20 }, { seq, at: i * 20 + 1 }] : [{ seq, at: i * 20 }]
          )
          if (arrivals.length === 0) return
          const last = arrivals[arrivals.length - 1]!.at
          const { out, buffer } = run(60, arrivals, last + 60)
          const kept = seqs.filter((_, i) => fates[i] !== "drop")
          assert.deepStrictEqual(out, kept)
          assert.strictEqual(buffer.size, 0)
          assert.strictEqual(buffer.late, 0)
          assert.strictEqual(buffer.duplicates, fates.filter((f) => f === "twice").length)
        }
      ),
      { numRuns: 300 }
    )
  })
})
