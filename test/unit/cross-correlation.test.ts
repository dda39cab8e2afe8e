import { assert, describe, it } from "@effect/vitest"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { crossCorrelation, decimate, readWav, toMono } from "../support/cross-correlation.ts"
import { sine, wavFile } from "../support/tones.ts"

/** Deterministic white noise (LCG), amplitude ~±8000. */
const noise = (count: number, seed = 7): Int16Array => {
  const out = new Int16Array(count)
  let x = seed
  for (let i = 0; i < count; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    out[i] = ((x >>> 16) - 32768) >> 2
  }
  return out
}

/** `signal` delayed by `delay` samples (zeros first), same length. */
const delayed = (signal: Int16Array, delay: number): Int16Array => {
  const out = new Int16Array(signal.length)
  out.set(signal.subarray(0, signal.length - delay), delay)
  return out
}

describe("crossCorrelation", () => {
  it("finds the delay of a shifted noise signal, peak ~1", () => {
    const a = noise(16_000)
    const result = crossCorrelation(a, delayed(a, 1234), 4000)
    assert.strictEqual(result.lag, 1234)
    assert.isAbove(result.peak, 0.999)
  })

  it("a negative lag when the second signal leads", () => {
    const a = noise(8000)
    const result = crossCorrelation(delayed(a, 321), a, 1000)
    assert.strictEqual(result.lag, -321)
    assert.isAbove(result.peak, 0.999)
  })

  it("survives noise added on top and a gain change", () => {
    const a = noise(16_000, 1)
    const disturbance = noise(16_000, 99)
    const b = delayed(a, 480).map((v, i) => Math.round(0.5 * v + 0.25 * disturbance[i]!))
    const result = crossCorrelation(a, b, 2000)
    assert.strictEqual(result.lag, 480)
    assert.isAbove(result.peak, 0.8)
    assert.isBelow(result.peak, 0.95)
  })

  it("unrelated noise peaks low", () => {
    const result = crossCorrelation(noise(16_000, 1), noise(16_000, 2), 2000)
    assert.isBelow(result.peak, 0.1)
  })

  it("a lag beyond maxLagSamples is not found", () => {
    const a = noise(16_000)
    assert.isBelow(crossCorrelation(a, delayed(a, 3000), 1000).peak, 0.1)
  })

  it("compares a 48 kHz original with a 16 kHz arrival after decimation", () => {
    const at48k = noise(48_000, 3)
    const at16k = decimate(at48k, 3)
    assert.strictEqual(at16k.length, 16_000)
    // The arrival: the 16 kHz version, 100 ms late.
    const result = crossCorrelation(decimate(at48k, 3), delayed(at16k, 1600), 3200)
    assert.strictEqual(result.lag, 1600)
    assert.isAbove(result.peak, 0.999)
  })
})

describe("decimate", () => {
  it("keeps a tone below the new Nyquist and removes one above it", () => {
    const keep = decimate(Int16Array.from(sine(1000, 48_000, 4800), (v) => Math.round(v * 32767)), 3)
    const drop = decimate(Int16Array.from(sine(12_000, 48_000, 4800), (v) => Math.round(v * 32767)), 3)
    const peak = (x: Int16Array) => x.subarray(100, x.length - 100).reduce((m, v) => Math.max(m, Math.abs(v)), 0)
    assert.isAbove(peak(keep), 15_000)
    assert.isBelow(peak(drop), 1000)
  })
})

describe("readWav / toMono", () => {
  it("reads a stereo WAV's format and averages it to mono", () => {
    const file = join(mkdtempSync(join(tmpdir(), "xcorr-")), "stereo.wav")
    writeFileSync(file, wavFile(Int16Array.from([100, 300, -200, -400]), 48_000, 2))
    const wav = readWav(file)
    assert.strictEqual(wav.sampleRate, 48_000)
    assert.strictEqual(wav.channels, 2)
    assert.deepStrictEqual(Array.from(toMono(wav.samples, wav.channels)), [200, -300])
  })
})
