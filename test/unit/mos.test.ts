import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import { delayImpairment, lossImpairment, mos, mosFromR, oneWayDelayMs, rFactor } from "../../src/programs/participants/mos.ts"

const close = (actual: number, expected: number, digits = 4) => assert.closeTo(actual, expected, 10 ** -digits, `${actual} vs ${expected}`)

describe("E-model MOS (ITU-T G.107)", () => {
  it("R = 93.2 (every impairment at its default) is MOS 4.41", () => {
    // 1 + 0.035·93.2 + 93.2·(93.2 − 60)·(100 − 93.2)·7e-6 = 1 + 3.262 + 93.2·33.2·6.8·7e-6 = 4.262 + 0.147286 = 4.409286
    close(mosFromR(93.2), 4.409286)
  })

  it("no loss, no jitter, no RTT: only the 20 ms codec delay, R = 92.72, MOS 4.40", () => {
    const q = { packetLossPercent: 0, jitterMs: 0, rttMs: 0 }
    assert.strictEqual(oneWayDelayMs(q), 20)
    close(delayImpairment(20), 0.48) // 0.024·20
    assert.strictEqual(lossImpairment(0), 0)
    close(rFactor(q), 92.72)
    // 1 + 3.2452 + 92.72·32.72·7.28·7e-6 = 4.2452 + 0.154602 = 4.399802
    close(mos(q), 4.399802)
  })

  it("the seed's example: 2.5 % loss, 15 ms jitter, 45 ms RTT is MOS 4.13", () => {
    const q = { packetLossPercent: 2.5, jitterMs: 15, rttMs: 45 }
    // d = 45/2 + 2·15 + 20 = 72.5 ms (below 177.3: no second term)
    assert.strictEqual(oneWayDelayMs(q), 72.5)
    close(delayImpairment(72.5), 1.74) // 0.024·72.5
    // Ie,eff = 0 + 95·2.5 / (2.5/1 + 25.1) = 237.5 / 27.6 = 8.605072
    close(lossImpairment(2.5), 8.605072)
    // R = 93.2 − 1.74 − 8.605072 = 82.854928
    close(rFactor(q), 82.854928)
    // 1 + 2.899922 + 82.854928·22.854928·17.145072·7e-6 = 3.899922 + 0.227267 = 4.127189
    close(mos(q), 4.127189)
  })

  it("a one-way delay above 177.3 ms adds 0.11 per ms beyond it", () => {
    const q = { packetLossPercent: 0, jitterMs: 0, rttMs: 400 }
    // d = 200 + 20 = 220; Id = 0.024·220 + 0.11·(220 − 177.3) = 5.28 + 4.697 = 9.977
    close(delayImpairment(oneWayDelayMs(q)), 9.977)
    close(rFactor(q), 83.223)
  })

  it("an unmeasured RTT counts as none", () => {
    assert.strictEqual(mos({ packetLossPercent: 1, jitterMs: 10, rttMs: null }), mos({ packetLossPercent: 1, jitterMs: 10, rttMs: 0 }))
  })

  it("bounds: 1 below R = 0, 4.5 above R = 100, never outside [1, 4.5]", () => {
    assert.strictEqual(mosFromR(-0.001), 1)
    assert.strictEqual(mosFromR(-50), 1)
    assert.strictEqual(mosFromR(100.001), 4.5)
    close(mosFromR(100), 4.5)
    close(mosFromR(0), 1)
    // The cubic dips to ~0.99 for 0 < R < 6.5; held at the scale's floor.
    assert.strictEqual(mosFromR(5), 1)
    assert.strictEqual(mos({ packetLossPercent: 100, jitterMs: 60_000, rttMs: 60_000 }), 1)
    fc.assert(fc.property(fc.double({ min: -1000, max: 1000, noNaN: true }), (r) => {
      const m = mosFromR(r)
      return m >= 1 && m <= 4.5
    }))
  })

  it("never rises with more loss, jitter or RTT", () => {
    const quality = fc.record({
      packetLossPercent: fc.double({ min: 0, max: 100, noNaN: true }),
      jitterMs: fc.double({ min: 0, max: 1000, noNaN: true }),
      rttMs: fc.double({ min: 0, max: 5000, noNaN: true })
    })
    const more = fc.double({ min: 0, max: 500, noNaN: true })
    fc.assert(fc.property(quality, more, (q, extra) => {
      const base = mos(q)
      return mos({ ...q, packetLossPercent: Math.min(100, q.packetLossPercent + extra) }) <= base &&
        mos({ ...q, jitterMs: q.jitterMs + extra }) <= base &&
        mos({ ...q, rttMs: q.rttMs + extra }) <= base
    }))
    // And strictly falls where the scale is not saturated.
    assert.isBelow(mos({ packetLossPercent: 5, jitterMs: 15, rttMs: 45 }), mos({ packetLossPercent: 2.5, jitterMs: 15, rttMs: 45 }))
    assert.isBelow(mos({ packetLossPercent: 0, jitterMs: 15, rttMs: 300 }), mos({ packetLossPercent: 0, jitterMs: 15, rttMs: 45 }))
  })
})
