import { describe, expect, it } from "vitest"
import { SequenceTracker, type SequenceVerdict } from "../../src/media/sequence.ts"

/** The tracker's rules with a BigInt window (its earlier form): the model the word-based window must agree with. */
const model = (bits: number) => {
  const modulus = 2 ** bits
  let newest: number | undefined
  let seen = 0n
  return (sequence: number): SequenceVerdict["_tag"] => {
    if (newest === undefined) {
      newest = sequence
      seen = 1n
      return "InOrder"
    }
    const ahead = (sequence - newest + modulus) % modulus
    if (ahead === 0) return "Duplicate"
    if (ahead < modulus / 2) {
      newest = sequence
      seen = ahead >= 64 ? 1n : ((seen << BigInt(ahead)) | 1n) & ((1n << 64n) - 1n)
      return ahead === 1 || ahead > 3000 ? "InOrder" : "Gap"
    }
    const behind = modulus - ahead
    if (behind < 64) {
      const bit = 1n << BigInt(behind)
      if ((seen & bit) !== 0n) return "Duplicate"
      seen |= bit
    }
    return "Late"
  }
}

/** A deterministic pseudo-random stream (xorshift32). */
const random = (seed: number) => () => {
  seed ^= seed << 13
  seed ^= seed >>> 17
  seed ^= seed << 5
  return (seed >>> 0) / 2 ** 32
}

describe("SequenceTracker", () => {
  for (const bits of [16, 32]) {
    it(`agrees with the BigInt window on in-order runs, gaps of every size up to 70, repeats, late arrivals and wraps (${bits}-bit)`, () => {
      const next = random(bits * 7919)
      const modulus = 2 ** bits
      const tracker = new SequenceTracker(bits)
      const reference = model(bits)
      let sequence = modulus - 500
      const tags = new Map<string, number>()
      for (let i = 0; i < 200_000; i++) {
        const r = next()
        // Mostly the next one; then gaps (0..70 ahead), repeats and late ones (1..70 behind).
        const step = r < 0.7 ? 1 : r < 0.85 ? Math.floor(next() * 71) : -Math.floor(next() * 70) - 1
        const candidate = (sequence + step + modulus) % modulus
        if (step > 0) sequence = candidate
        const got = tracker.track(candidate)._tag
        expect(got, `#${i}: ${candidate}`).toBe(reference(candidate))
        tags.set(got, (tags.get(got) ?? 0) + 1)
      }
      // Every verdict came up many times, and the run wrapped.
      for (const tag of ["InOrder", "Gap", "Duplicate", "Late"]) expect(tags.get(tag) ?? 0).toBeGreaterThan(1000)
      expect(tracker.extended).toBeGreaterThan(0)
    })
  }
})
