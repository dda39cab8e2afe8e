import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { OpusRtpDecoder } from "../../src/layers/audio/opus-rtp-decoder.ts"
import { AicMetadataError, decodeAicMetadata, encodeAicMetadata } from "../../src/media/aic-element.ts"
import { parseOpusRtp } from "../../src/media/opus.ts"
import { getExtension, parseRtp, type RtpPacket, removeExtension, serializeRtp, setExtension, SKIP_EXTENSION_ELEMENTS } from "../../src/media/rtp.ts"
import { extendSequence16, seqDelta16, SequenceTracker } from "../../src/media/sequence.ts"
import { captureOpusRtp } from "../support/ffmpeg-rtp.ts"

const ok = <A, E>(r: Result.Result<A, E>): A => {
  if (Result.isFailure(r)) throw new Error(`expected success, got ${JSON.stringify(r.failure)}`)
  return r.success
}

/** One-byte form block whose element (id 10) claims 11 data bytes in a 4-byte block. */
const MALFORMED_ONE_BYTE = Uint8Array.of(0xaa, 0, 0, 0)

const withExtensionBody = (p: RtpPacket, profile: number, body: Uint8Array): Uint8Array =>
  serializeRtp({
    marker: p.marker,
    payloadType: p.payloadType,
    sequence: p.sequence,
    timestamp: p.timestamp,
    ssrc: p.ssrc,
    payload: p.payload,
    extension: { _tag: "Raw", profile, body }
  })

const base = { payloadType: 111, sequence: 7, timestamp: 960, ssrc: 0x1234, payload: Uint8Array.of(0x78, 1, 2, 3) }

describe("one RTP parser: the audio path's extension tolerance is an option", () => {
  it("a malformed RFC 8285 element fails the default parse and passes with elements skipped", () => {
    const bytes = serializeRtp({ ...base, extension: { _tag: "Raw", profile: 0xbede, body: MALFORMED_ONE_BYTE } })
    const strict = parseRtp(bytes)
    assert.isTrue(Result.isFailure(strict) && strict.failure.reason === "extension_element_overflow")
    const skipped = ok(parseRtp(bytes, SKIP_EXTENSION_ELEMENTS))
    assert.deepStrictEqual(Array.from(skipped.payload), Array.from(base.payload))
    assert.deepStrictEqual(skipped.extension, { _tag: "Raw", profile: 0xbede, body: MALFORMED_ONE_BYTE })
    assert.strictEqual(ok(parseOpusRtp(bytes)).sequence, 7)
    // The block itself must still fit the packet, with elements skipped or not.
    const cut = bytes.slice(0, 12 + 4 + 2)
    const tooShort = parseOpusRtp(cut)
    assert.isTrue(Result.isFailure(tooShort) && tooShort.failure.reason === "malformed_rtp")
    assert.strictEqual(Result.isFailure(tooShort) ? tooShort.failure.sequence : undefined, 7)
  })

  it("a packet parsed with elements skipped reads and edits its elements like a fully parsed one", () => {
    const bytes = serializeRtp({
      ...base,
      extension: { _tag: "OneByte", elements: [{ id: 1, data: Uint8Array.of(0x85) }, { id: 3, data: Uint8Array.of(9, 8) }] }
    })
    const full = ok(parseRtp(bytes))
    const skipped = ok(parseRtp(bytes, SKIP_EXTENSION_ELEMENTS))
    assert.strictEqual(skipped.extension?._tag, "Raw")
    assert.deepStrictEqual(Array.from(getExtension(skipped, 3) ?? []), [9, 8])
    assert.isUndefined(getExtension(skipped, 2))
    const element = Uint8Array.of(1, 2, 3, 4)
    assert.deepStrictEqual(Array.from(ok(setExtension(skipped, 5, element))), Array.from(ok(setExtension(full, 5, element))))
    assert.deepStrictEqual(Array.from(ok(setExtension(skipped, 1, element))), Array.from(ok(setExtension(full, 1, element))))
    assert.deepStrictEqual(Array.from(ok(removeExtension(skipped, 1))), Array.from(ok(removeExtension(full, 1))))
    // A foreign (non-RFC 8285) block is still refused, and a malformed one stays unreadable.
    const malformed = ok(parseRtp(serializeRtp({ ...base, extension: { _tag: "Raw", profile: 0xbede, body: MALFORMED_ONE_BYTE } }), SKIP_EXTENSION_ELEMENTS))
    assert.isUndefined(getExtension(malformed, 10))
    const edited = setExtension(malformed, 5, element)
    assert.isTrue(Result.isFailure(edited) && edited.failure._tag === "RtpParseError")
  })

  it("the Opus decoder decodes packets whose extension block is malformed", async () => {
    const packets = await captureOpusRtp({ tones: [440], toneMs: 300, channels: 1 })
    assert.isAtLeast(packets.length, 10)
    const decoder = await OpusRtpDecoder.make({ payloadType: 111 })
    try {
      let chunks = 0
      for (const { packet, arrivalMs } of packets) {
        const mangled = withExtensionBody(ok(parseRtp(packet)), 0xbede, MALFORMED_ONE_BYTE)
        assert.isTrue(Result.isFailure(parseRtp(mangled)), "the video path rejects it")
        const result = decoder.decode(mangled, arrivalMs)
        if (Result.isFailure(result)) assert.fail(`${result.failure.reason}: ${result.failure.detail}`)
        else if (result.success.chunk !== undefined) chunks++
      }
      assert.strictEqual(chunks, packets.length)
    } finally {
      decoder.free()
    }
  })
})

describe("one wrap-aware sequence tracker", () => {
  it("signed 16-bit distance and extension across the wrap", () => {
    assert.strictEqual(seqDelta16(65535, 0), 1)
    assert.strictEqual(seqDelta16(0, 65535), -1)
    assert.strictEqual(seqDelta16(10, 10 + 0x7fff), 0x7fff)
    assert.strictEqual(seqDelta16(10, 10 + 0x8000), -0x8000)
    assert.strictEqual(extendSequence16(0x1fffe, 1), 0x20001)
    assert.strictEqual(extendSequence16(0x20001, 65534), 0x1fffe)
  })

  it("the tracker's extended number unrolls 16-bit wraps and follows only accepted numbers", () => {
    const tracker = new SequenceTracker(16)
    const seen: Array<number> = []
    for (const s of [65533, 65534, 65535, 0, 1, 65535, 3, 3, 10]) {
      const verdict = tracker.track(s)
      if (verdict._tag === "InOrder" || verdict._tag === "Gap") seen.push(tracker.extended)
    }
    assert.deepStrictEqual(seen, [65533, 65534, 65535, 65536, 65537, 65539, 65546])
    const wide = new SequenceTracker(32)
    wide.track(0xffffffff)
    wide.track(0)
    assert.strictEqual(wide.extended, 0)
  })
})

describe("the AIC element codec's error", () => {
  it.effect("is a tagged error an Effect can catch by tag", () =>
    Effect.gen(function*() {
      const failed = decodeAicMetadata(new Uint8Array(3))
      assert.isTrue(Result.isFailure(failed))
      if (Result.isSuccess(failed)) return
      assert.instanceOf(failed.failure, AicMetadataError)
      assert.instanceOf(failed.failure, Error)
      assert.strictEqual(failed.failure._tag, "AicMetadataError")
      assert.strictEqual(failed.failure.reason, "bad_length")
      const encoded = encodeAicMetadata({ version: 1, compressionRatio: 1, qualityScore: 20_000, modelTypeHash: 0, flags: 0 })
      const reason = yield* Effect.fromResult(encoded).pipe(
        Effect.as("encoded"),
        Effect.catchTag("AicMetadataError", (e) => Effect.succeed(e.reason))
      )
      assert.strictEqual(reason, "out_of_range")
    }))
})

describe("src/media is a leaf", () => {
  const importsOf = (dir: string): Array<{ readonly file: string; readonly from: string }> =>
    readdirSync(dir, { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith(".ts"))
      .flatMap((file) =>
        Array.from(readFileSync(join(dir, file), "utf8").matchAll(/^\s*(?:import|export)[^"']*?from\s+["']([^"']+)["']/gm), (m) => ({
          file,
          from: m[1]!
        }))
      )

  it("imports only npm packages, its own files and src/schemas", () => {
    const media = join(import.meta.dirname, "../../src/media")
    const imports = importsOf(media)
    assert.isAbove(imports.length, 5)
    const outside = imports.filter(({ from }) => from.startsWith(".") && !from.startsWith("./") && !from.startsWith("../schemas/"))
    assert.deepStrictEqual(outside, [])
  })

  it("no layer imports a codec from src/programs (the other layer -> program imports are issue 11's other items)", () => {
    const layers = join(import.meta.dirname, "../../src/layers")
    const codecs = importsOf(layers).filter(({ from }) => /programs\/(aic\/(rtp|classify|frames)|audio\/(opus|pcm|jitter))\.ts$/.test(from))
    assert.deepStrictEqual(codecs, [])
  })
})
