import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import { Chunker, Downsampler, toInt16 } from "../../src/demo/pcm.ts"
import { parseChunk } from "../../src/programs/audio/pcm.ts"
import { checkToneSequence, concatSamples, toneSequenceFloat } from "../support/tones.ts"

/** The browser demo's PCM path without a browser: 48 kHz capture -> 16 kHz chunks the server accepts. */
describe("demo PCM chunks", () => {
  it("downsampled 48 kHz tones keep their frequencies; every chunk parses on the server, in sequence", () => {
    const input = toneSequenceFloat({ sampleRate: 48_000 })
    const downsampler = new Downsampler(48_000)
    let now = 1_700_000_000_000
    const chunker = new Chunker(40, () => now, downsampler.delayMs)
    const parts: Array<Int16Array> = []
    for (let i = 0; i < input.length; i += 128) {
      now += (128 / 48_000) * 1000
      for (const chunk of chunker.push(toInt16(downsampler.push(input.subarray(i, i + 128))))) {
        const parsed = parseChunk(new Uint8Array(chunk.bytes), { nowMs: now })
        assert.isTrue(Result.isSuccess(parsed), JSON.stringify(parsed))
        if (Result.isSuccess(parsed)) {
          assert.strictEqual(parsed.success.sequence, parts.length)
          assert.strictEqual(parsed.success.durationMs, 40)
          assert.strictEqual(parsed.success.captureTimeMs, Math.round(chunk.captureTimeMs))
          assert.isBelow(now - parsed.success.captureTimeMs, 40 + downsampler.delayMs + 10)
          parts.push(parsed.success.samples.slice())
        }
      }
    }
    const samples = concatSamples(parts)
    // All the audio but the filter's delay and the last partial chunk.
    assert.isAbove(samples.length, (input.length / 3) - 16 * 40 - downsampler.half)
    const check = checkToneSequence(samples, 16_000)
    assert.isTrue(check.ok, check.reason)
  })
})
