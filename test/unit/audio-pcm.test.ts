import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import { SequenceTracker } from "../../src/media/sequence.ts"
import { encodeChunk, encodeChunkError, parseChunk } from "../../src/programs/audio/pcm.ts"
import { CHUNK_HEADER_BYTES, type ChunkRejected, type ChunkRejectReason, chunkRejectReasons, type PcmChunk } from "../../src/schemas/audio.ts"

const NOW = 1_750_000_000_000

const samplesOf = (count: number, seed = 1) => {
  const out = new Int16Array(count)
  let x = seed
  for (let i = 0; i < count; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    out[i] = (x >>> 16) - 32768
  }
  return out
}

const header = (fields: { version?: number; sequence?: number; captureTimeMs?: bigint | number }, sampleBytes: number) => {
  const out = new Uint8Array(CHUNK_HEADER_BYTES + sampleBytes)
  const view = new DataView(out.buffer)
  view.setUint8(0, fields.version ?? 1)
  view.setUint32(4, fields.sequence ?? 7)
  view.setBigUint64(8, BigInt(fields.captureTimeMs ?? NOW))
  return out
}

const ok = (bytes: Uint8Array, options: Parameters<typeof parseChunk>[1] = { nowMs: NOW }): PcmChunk => {
  const result = parseChunk(bytes, options)
  if (Result.isFailure(result)) assert.fail(`rejected: ${result.failure.reason} (${result.failure.detail})`)
  return result.success
}

const rejected = (bytes: Uint8Array, options: Parameters<typeof parseChunk>[1] = { nowMs: NOW }): ChunkRejected => {
  const result = parseChunk(bytes, options)
  if (Result.isSuccess(result)) return assert.fail("accepted a bad chunk")
  return result.failure
}

describe("PCM chunk parsing", () => {
  it("parses a valid chunk: header fields, duration, zero-copy sample views", () => {
    const samples = samplesOf(320)
    const bytes = encodeChunk({ sequence: 0xfffffffe, captureTimeMs: NOW - 20, samples })
    assert.strictEqual(bytes.byteLength, 16 + 640)
    const chunk = ok(bytes)
    assert.strictEqual(chunk.sequence, 0xfffffffe)
    assert.strictEqual(chunk.captureTimeMs, NOW - 20)
    assert.strictEqual(chunk.durationMs, 20)
    assert.deepStrictEqual(Array.from(chunk.samples), Array.from(samples))
    assert.strictEqual(chunk.pcm.buffer, bytes.buffer, "pcm is a view of the message")
    assert.strictEqual(chunk.samples.buffer, bytes.buffer, "samples are a view when aligned")
    assert.strictEqual(chunk.pcm.byteOffset, 16)
  })

  it("reads chunks at odd offsets (copying the samples) with the same result", () => {
    const samples = samplesOf(160, 3)
    const encoded = encodeChunk({ sequence: 1, captureTimeMs: NOW, samples })
    const backing = new Uint8Array(encoded.byteLength + 1)
    backing.set(encoded, 1)
    const chunk = ok(backing.subarray(1))
    assert.deepStrictEqual(Array.from(chunk.samples), Array.from(samples))
    assert.strictEqual(chunk.pcm.byteOffset, 17)
  })

  it("accepts the duration bounds: exactly 10 ms and exactly 1000 ms", () => {
    assert.strictEqual(ok(header({}, 320)).durationMs, 10)
    assert.strictEqual(ok(header({}, 32_000)).durationMs, 1000)
  })

  const cases: ReadonlyArray<readonly [ChunkRejectReason, Uint8Array, number | undefined]> = [
    ["too_short", new Uint8Array(15), undefined],
    ["too_short", new Uint8Array(0), undefined],
    ["bad_version", header({ version: 2, sequence: 11 }, 320), 11],
    ["bad_version", header({ version: 0, sequence: 12 }, 320), 12],
    ["odd_sample_bytes", header({ sequence: 13 }, 321), 13],
    ["too_short_duration", header({ sequence: 14 }, 318), 14],
    ["too_short_duration", header({ sequence: 15 }, 0), 15],
    ["too_long_duration", header({ sequence: 16 }, 32_002), 16],
    ["too_large", header({ sequence: 17 }, 70_000), 17],
    ["bad_capture_time", header({ sequence: 18, captureTimeMs: 0 }, 320), 18],
    ["bad_capture_time", header({ sequence: 19, captureTimeMs: NOW + 61_000 }, 320), 19],
    ["bad_capture_time", header({ sequence: 20, captureTimeMs: 0xffffffffffffffffn }, 320), 20]
  ]
  for (const [reason, bytes, sequence] of cases) {
    it(`rejects ${reason} (${bytes.byteLength} bytes)`, () => {
      const failure = rejected(bytes)
      assert.strictEqual(failure.reason, reason)
      assert.strictEqual(failure.sequence, sequence)
      assert.isTrue(failure.detail.length > 0)
    })
  }

  it("covers every reject reason", () => {
    assert.deepStrictEqual(new Set(cases.map(([reason]) => reason)), new Set(chunkRejectReasons))
  })

  it("applies a configured size limit and clock skew", () => {
    assert.strictEqual(rejected(header({}, 640), { nowMs: NOW, maxBytes: 600 }).reason, "too_large")
    assert.strictEqual(ok(header({}, 640), { nowMs: NOW, maxBytes: 656 }).durationMs, 20)
    assert.strictEqual(rejected(header({ captureTimeMs: NOW + 2000 }, 320), { nowMs: NOW, maxFutureSkewMs: 1000 }).reason, "bad_capture_time")
    assert.strictEqual(ok(header({ captureTimeMs: NOW + 500 }, 320), { nowMs: NOW, maxFutureSkewMs: 1000 }).captureTimeMs, NOW + 500)
  })

  it("round-trips random chunks (encode -> parse)", () => {
    let seed = 42
    const rand = () => {
      seed = (seed * 1664525 + 1013904223) >>> 0
      return seed / 2 ** 32
    }
    for (let i = 0; i < 300; i++) {
      const sequence = Math.floor(rand() * 2 ** 32)
      const captureTimeMs = 1 + Math.floor(rand() * NOW)
      const count = 160 + Math.floor(rand() * (16_000 - 160 + 1))
      const samples = samplesOf(count, i + 1)
      const chunk = ok(encodeChunk({ sequence, captureTimeMs, samples }))
      assert.strictEqual(chunk.sequence, sequence)
      assert.strictEqual(chunk.captureTimeMs, captureTimeMs)
      assert.strictEqual(chunk.durationMs, count / 16)
      assert.strictEqual(chunk.samples.length, count)
      assert.isTrue(chunk.samples.every((s, k) => s === samples[k]))
    }
  })

  it("encodes the data-channel error message", () => {
    assert.deepStrictEqual(JSON.parse(encodeChunkError({ reason: "odd_sample_bytes", sequence: 9 })), {
      type: "error",
      reason: "odd_sample_bytes",
      sequence: 9
    })
    assert.strictEqual(encodeChunkError({ reason: "too_short" }), `{"type":"error","reason":"too_short"}`)
    const failure = rejected(header({ version: 3, sequence: 5 }, 320))
    assert.strictEqual(encodeChunkError(failure), `{"type":"error","reason":"bad_version","sequence":5}`)
  })
})

describe("SequenceTracker", () => {
  it("counts gaps as loss, drops duplicates and late arrivals", () => {
    const tracker = new SequenceTracker()
    const verdicts = [10, 11, 12, 15, 15, 13, 16, 16, 20, 14, 12, 21].map((s) => tracker.track(s)._tag)
    assert.deepStrictEqual(verdicts, [
      "InOrder",
      "InOrder",
      "InOrder",
      "Gap", // 13, 14 missing
      "Duplicate",
      "Late", // 13 arrives late
      "InOrder",
      "Duplicate",
      "Gap", // 17, 18, 19 missing
      "Late", // 14 arrives late
      "Duplicate", // 12 again
      "InOrder"
    ])
    assert.strictEqual(tracker.lost, 5)
    assert.strictEqual(tracker.duplicates, 3)
    assert.strictEqual(tracker.late, 2)
    assert.strictEqual(tracker.received, 7)
    const gap = new SequenceTracker()
    gap.track(1)
    assert.deepStrictEqual(gap.track(4), { _tag: "Gap", lost: 2 })
  })

  it("handles wrap-around at 2^32 and at 2^16", () => {
    const t32 = new SequenceTracker()
    assert.deepStrictEqual([0xfffffffe, 0xffffffff, 0, 2].map((s) => t32.track(s)._tag), ["InOrder", "InOrder", "InOrder", "Gap"])
    assert.strictEqual(t32.lost, 1)
    assert.strictEqual(t32.track(0xffffffff)._tag, "Duplicate")
    const t16 = new SequenceTracker(16)
    assert.deepStrictEqual([65534, 65535, 0, 1].map((s) => t16.track(s)._tag), ["InOrder", "InOrder", "InOrder", "InOrder"])
    assert.strictEqual(t16.track(65535)._tag, "Duplicate")
    assert.strictEqual(t16.track(40000)._tag, "Late", "more than half the space behind is old, not a jump ahead")
  })

  it("treats a jump ahead beyond the dropout limit as a restart, not loss (RFC 3550 MAX_DROPOUT)", () => {
    const t32 = new SequenceTracker()
    assert.deepStrictEqual([7, 8, 8 + 2 ** 31 - 1, 8 + 2 ** 31].map((s) => t32.track(s)._tag), ["InOrder", "InOrder", "InOrder", "InOrder"])
    assert.strictEqual(t32.lost, 0)
    assert.strictEqual(t32.track(8 + 2 ** 31 - 1)._tag, "Duplicate")
    const t16 = new SequenceTracker(16)
    assert.deepStrictEqual([100, 30_000].map((s) => t16.track(s)._tag), ["InOrder", "InOrder"])
    assert.strictEqual(t16.lost, 0)
    // A gap within the limit is still loss.
    assert.deepStrictEqual(t16.track(30_101), { _tag: "Gap", lost: 100 })
  })

  it("treats anything older than the 64-entry window as late", () => {
    const tracker = new SequenceTracker()
    tracker.track(0)
    tracker.track(100)
    assert.strictEqual(tracker.lost, 99)
    assert.strictEqual(tracker.track(0)._tag, "Late")
    assert.strictEqual(tracker.track(99)._tag, "Late")
    assert.strictEqual(tracker.track(99)._tag, "Duplicate")
  })
})
