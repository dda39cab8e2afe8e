import { assert, describe, it, vi } from "@effect/vitest"
import { Result } from "effect"
import { OpusRtpDecoder } from "../../src/layers/audio/opus-rtp-decoder.ts"
import { checkOpusPacket, floatToInt16, parseOpusRtp as parseRtp } from "../../src/media/opus.ts"
import type { RtpPacket } from "../../src/media/rtp.ts"
import type { PcmChunk } from "../../src/schemas/audio.ts"
import { captureOpusRtp } from "../support/ffmpeg-rtp.ts"
import { checkToneSequence, concatSamples, dominantFrequency, rms, toneSequence } from "../support/tones.ts"

interface RtpFields {
  readonly sequence?: number
  readonly timestamp?: number
  readonly ssrc?: number
  readonly payloadType?: number
  readonly marker?: boolean
  readonly csrcs?: number
  readonly extensionWords?: number
  readonly padding?: number
  readonly payload?: Uint8Array
  readonly version?: number
}

/** Builds an RTP packet (RFC 3550) with optional CSRCs, header extension and padding. */
const rtp = (f: RtpFields = {}): Uint8Array => {
  const csrcs = f.csrcs ?? 0
  const ext = f.extensionWords
  const payload = f.payload ?? Uint8Array.of(0xfc, 1, 2, 3)
  const padding = f.padding ?? 0
  const length = 12 + csrcs * 4 + (ext === undefined ? 0 : 4 + ext * 4) + payload.length + padding
  const out = new Uint8Array(length)
  const view = new DataView(out.buffer)
  view.setUint8(0, ((f.version ?? 2) << 6) | (padding > 0 ? 0x20 : 0) | (ext !== undefined ? 0x10 : 0) | csrcs)
  view.setUint8(1, (f.marker ? 0x80 : 0) | (f.payloadType ?? 111))
  view.setUint16(2, f.sequence ?? 1000)
  view.setUint32(4, f.timestamp ?? 123456)
  view.setUint32(8, f.ssrc ?? 0xdeadbeef)
  let offset = 12
  for (let i = 0; i < csrcs; i++, offset += 4) view.setUint32(offset, 0x1000 + i)
  if (ext !== undefined) {
    view.setUint16(offset, 0xbede)
    view.setUint16(offset + 2, ext)
    offset += 4
    for (let i = 0; i < ext * 4; i++) out[offset++] = 0xaa
  }
  out.set(payload, offset)
  if (padding > 0) out[length - 1] = padding
  return out
}

const parsed = (bytes: Uint8Array): RtpPacket => {
  const result = parseRtp(bytes)
  if (Result.isFailure(result)) return assert.fail(`rejected: ${result.failure.detail}`)
  return result.success
}
const malformed = (bytes: Uint8Array) => {
  const result = parseRtp(bytes)
  assert.isTrue(Result.isFailure(result), "expected malformed_rtp")
  if (Result.isFailure(result)) assert.strictEqual(result.failure.reason, "malformed_rtp")
}

describe("RTP parsing", () => {
  it("reads the fixed header and the payload view", () => {
    const bytes = rtp({ sequence: 65535, timestamp: 0xfffffff0, ssrc: 42, payloadType: 100, marker: true })
    const packet = parsed(bytes)
    assert.deepStrictEqual(
      [packet.sequence, packet.timestamp, packet.ssrc, packet.payloadType, packet.marker],
      [65535, 0xfffffff0, 42, 100, true]
    )
    assert.deepStrictEqual(Array.from(packet.payload), [0xfc, 1, 2, 3])
    assert.strictEqual(packet.payload.buffer, bytes.buffer)
  })

  it("skips CSRCs, the header extension and padding", () => {
    const payload = Uint8Array.of(0x78, 9, 8, 7, 6)
    for (const fields of [{ csrcs: 3 }, { extensionWords: 2 }, { extensionWords: 0 }, { padding: 4 }, { csrcs: 15, extensionWords: 5, padding: 1 }]) {
      assert.deepStrictEqual(Array.from(parsed(rtp({ ...fields, payload })).payload), Array.from(payload), JSON.stringify(fields))
    }
  })

  it("rejects malformed packets", () => {
    malformed(new Uint8Array(11))
    malformed(rtp({ version: 1 }))
    malformed(rtp({ csrcs: 4, payload: new Uint8Array(0) }).subarray(0, 20)) // CSRC list cut
    malformed(rtp({ extensionWords: 3, payload: new Uint8Array(0) }).subarray(0, 20)) // extension cut
    malformed(rtp({ payload: new Uint8Array(0) }).subarray(0, 14).map((b, i) => (i === 0 ? b | 0x10 : b))) // X set, no room
    const zeroPad = rtp({ padding: 2 })
    zeroPad[zeroPad.length - 1] = 0
    malformed(zeroPad)
    const longPad = rtp({ padding: 2 })
    longPad[longPad.length - 1] = 200
    malformed(longPad)
  })

  it("checks the Opus packet structure before decoding", () => {
    assert.isUndefined(checkOpusPacket(Uint8Array.of(0xfc, 1, 2)))
    assert.isDefined(checkOpusPacket(new Uint8Array(0)))
    assert.isDefined(checkOpusPacket(Uint8Array.of(0xfd, 1))) // code 1 with an odd split
    assert.isDefined(checkOpusPacket(Uint8Array.of(0xfe, 200, 1))) // code 2, first frame runs past the end
    assert.isDefined(checkOpusPacket(Uint8Array.of(0xff, 0))) // code 3, zero frames
    assert.isDefined(checkOpusPacket(Uint8Array.of(0x0b, 7))) // code 3, 7 x 60 ms SILK frames > 120 ms
  })
})

describe("s16 conversion", () => {
  it("rounds and clips", () => {
    assert.deepStrictEqual(Array.from(floatToInt16(Float32Array.of(0, 0.5, -1, 2, -2))), [0, 16384, -32768, 32767, -32768])
    assert.deepStrictEqual(Array.from(floatToInt16(Float32Array.of(0.25, 0.5, 1), 2)), [8192, 16384])
  })
})

const decodeAll = async (packets: ReadonlyArray<{ packet: Uint8Array; arrivalMs: number }>) => {
  const decoder = await OpusRtpDecoder.make({ payloadType: 111 })
  try {
    const chunks: Array<PcmChunk> = []
    const rejects: Array<string> = []
    for (const { packet, arrivalMs } of packets) {
      const result = decoder.decode(packet, arrivalMs)
      if (Result.isFailure(result)) rejects.push(result.failure.reason)
      else if (result.success.chunk !== undefined) chunks.push(result.success.chunk)
    }
    return { chunks, rejects, stats: decoder.stats }
  } finally {
    decoder.free()
  }
}

describe("tone sequence checker", () => {
  it("accepts the generated sequence and rejects a wrong order, a missing tone and a 3 % detune", () => {
    assert.isTrue(checkToneSequence(toneSequence(), 16_000).ok)
    assert.isFalse(checkToneSequence(toneSequence({ tones: [440, 880, 660, 550, 330] }), 16_000).ok)
    assert.isFalse(checkToneSequence(toneSequence({ tones: [440, 660, 550, 330] }), 16_000).ok)
    const detuned = checkToneSequence(toneSequence({ tones: [440, 660, 880 * 1.03, 550, 330] }), 16_000)
    assert.isFalse(detuned.ok)
    assert.deepStrictEqual(detuned.observed, [440, 660, 550, 330])
    assert.closeTo(dominantFrequency(toneSequence({ tones: [1234.5], sampleRate: 48_000 }), 48_000), 1234.5, 0.5)
  })
})

describe("Opus RTP from ffmpeg -> 16 kHz PCM", () => {
  it("decodes a stereo tone sequence that follows the tones within 2 %, in order, with no gaps", async () => {
    const packets = await captureOpusRtp({ channels: 2 })
    assert.isAtLeast(packets.length, 99) // 2 s of 20 ms frames
    const { chunks, rejects, stats } = await decodeAll(packets)
    assert.deepStrictEqual(rejects, [])
    assert.deepStrictEqual(stats, { received: packets.length, lost: 0, duplicates: 0, late: 0 })
    for (let i = 1; i < chunks.length; i++) assert.strictEqual(chunks[i]!.sequence, chunks[i - 1]!.sequence + 1)
    assert.isTrue(chunks.every((c) => c.durationMs === 20 && c.samples.length === 320 && c.pcm.byteLength === 640))
    const check = checkToneSequence(concatSamples(chunks.map((c) => c.samples)), 16_000)
    assert.isTrue(check.ok, check.reason)
  })

  it("decodes a mono stream with 10 ms frames the same way", async () => {
    const packets = await captureOpusRtp({ channels: 1, frameMs: 10, tones: [330, 880, 440] })
    const { chunks, rejects } = await decodeAll(packets)
    assert.deepStrictEqual(rejects, [])
    assert.isTrue(chunks.every((c) => c.durationMs === 10))
    const check = checkToneSequence(concatSamples(chunks.map((c) => c.samples)), 16_000, { tones: [330, 880, 440] })
    assert.isTrue(check.ok, check.reason)
  })

  it("keeps a 1 kHz tone's level and removes a 10 kHz one (above the 8 kHz output Nyquist) by more than 40 dB", async () => {
    const level = async (frequency: number) => {
      const { chunks } = await decodeAll(await captureOpusRtp({ tones: [frequency], toneMs: 1000, channels: 1 }))
      return { samples: concatSamples(chunks.map((c) => c.samples)).subarray(1600), chunks: chunks.length }
    }
    const input = 1 / 8 / Math.SQRT2 // ffmpeg's sine source: amplitude 1/8
    const low = await level(1000)
    assert.isAtLeast(low.chunks, 49)
    assert.closeTo(dominantFrequency(low.samples, 16_000), 1000, 10)
    assert.closeTo(rms(low.samples) / input, 1, 0.1)
    const high = await level(10_000)
    const attenuationDb = 20 * Math.log10(input / Math.max(1 / 32768, rms(high.samples)))
    assert.isAbove(attenuationDb, 40, `attenuation ${attenuationDb.toFixed(1)} dB`)
  })

  it("counts lost packets, drops duplicates and late packets, rejects wrong payload types and garbage", async () => {
    const packets = await captureOpusRtp({ tones: [440], toneMs: 400 })
    const kept = packets.filter((_, i) => i % 5 !== 3) // lose 1 in 5
    const reordered = [...kept]
    ;[reordered[10], reordered[11]] = [reordered[11]!, reordered[10]!] // late one
    const withDuplicate = [...reordered.slice(0, 15), reordered[14]!, ...reordered.slice(15)]
    const foreign = { packet: rtp({ payloadType: 0, sequence: 1 }), arrivalMs: Date.now() }
    const garbage = { packet: rtp({ ssrc: parsed(packets[0]!.packet).ssrc, payload: Uint8Array.of(0xff, 0) }), arrivalMs: Date.now() }
    const { chunks, rejects, stats } = await decodeAll([...withDuplicate, foreign, garbage])
    assert.deepStrictEqual(rejects, ["wrong_payload_type", "opus_decode_error"])
    const lostByDesign = packets.length - kept.length
    assert.strictEqual(stats.duplicates, 1)
    assert.strictEqual(stats.late, 1)
    // The swapped pair shows as one extra gap (filled late, not uncounted).
    assert.strictEqual(stats.lost, lostByDesign + 1)
    assert.strictEqual(chunks.length, kept.length - 1)
    const check = checkToneSequence(concatSamples(chunks.map((c) => c.samples)), 16_000, { tones: [440] })
    assert.isTrue(check.ok, check.reason)
  })

  it("maps RTP timestamps to capture time, anchored at the least-delayed arrival", async () => {
    const packets = (await captureOpusRtp({ tones: [440], toneMs: 200 })).slice(0, 8)
    const t0 = 1_750_000_000_000
    const arrivals = packets.map((p, i) => ({ packet: p.packet, arrivalMs: t0 + 20 * i + (i === 0 ? 15 : i % 2 === 0 ? 3 : 7) }))
    const { chunks } = await decodeAll(arrivals)
    assert.strictEqual(chunks[0]!.captureTimeMs, t0 + 15)
    // Packets 1 and 2 arrive sooner than the anchor implies (packet 0 was delayed): the anchor moves
    // to them; from there on the media clock carries the capture time, arrival jitter ignored.
    assert.deepStrictEqual(chunks.slice(1).map((c) => c.captureTimeMs - t0), [27, 43, 63, 83, 103, 123, 143])
  })
})

/** `packet` with its sequence number replaced. */
const withSequence = (packet: Uint8Array, sequence: number): Uint8Array => {
  const out = Uint8Array.from(packet)
  new DataView(out.buffer).setUint16(2, sequence & 0xffff)
  return out
}

describe("Opus RTP: no-audio packets, concealment, libopus errors", () => {
  it("skips padding-only packets (Chromium's probes) without a gap in the chunk sequence or any loss", async () => {
    const packets = await captureOpusRtp({ tones: [440], toneMs: 400 })
    const first = parsed(packets[0]!.packet)
    const out: Array<{ packet: Uint8Array; arrivalMs: number }> = []
    let seq = first.sequence
    packets.forEach(({ packet, arrivalMs }, i) => {
      out.push({ packet: withSequence(packet, seq++), arrivalMs })
      // Two padding-only probes after every fifth packet: P bit, repeated timestamp, payload all padding.
      if (i % 5 === 4) {
        const timestamp = parsed(packet).timestamp
        for (let k = 0; k < 2; k++) {
          out.push({
            packet: rtp({ sequence: seq++ & 0xffff, timestamp, ssrc: first.ssrc, payloadType: 111, payload: new Uint8Array(0), padding: 224 }),
            arrivalMs
          })
        }
      }
    })
    const { chunks, rejects, stats } = await decodeAll(out)
    assert.deepStrictEqual(rejects, [])
    assert.strictEqual(stats.lost, 0)
    assert.strictEqual(chunks.length, packets.length)
    for (let i = 1; i < chunks.length; i++) assert.strictEqual(chunks[i]!.sequence, chunks[i - 1]!.sequence + 1, `gap after ${chunks[i - 1]!.sequence}`)
  })

  it("with concealMs, fills the first lost packets of a gap with libopus PLC in their own sequence numbers", async () => {
    const packets = await captureOpusRtp({ tones: [440], toneMs: 1000 })
    // Lose packets 10 (1), 20-21 (2) and 30-39 (10: 200 ms, more than the 120 ms concealed).
    const lost = new Set([10, 20, 21, ...Array.from({ length: 10 }, (_, i) => 30 + i)])
    const t0 = 1_750_000_000_000
    const kept = packets.map((p, i) => ({ packet: p.packet, arrivalMs: t0 + 20 * i })).filter((_, i) => !lost.has(i))
    const decoder = await OpusRtpDecoder.make({ payloadType: 111, concealMs: 1000 })
    try {
      const chunks: Array<PcmChunk> = []
      let concealed = 0
      for (const { packet, arrivalMs } of kept) {
        const result = decoder.decode(packet, arrivalMs)
        if (Result.isFailure(result)) return assert.fail(result.failure.detail)
        concealed += result.success.concealed.length
        chunks.push(...result.success.concealed, ...(result.success.chunk === undefined ? [] : [result.success.chunk]))
      }
      assert.strictEqual(decoder.stats.lost, lost.size)
      assert.strictEqual(concealed, 1 + 2 + 6) // 120 ms of the 200 ms gap
      const sequences = chunks.map((c) => c.sequence - chunks[0]!.sequence)
      const expected = Array.from({ length: packets.length }, (_, i) => i).filter((i) => i < 36 || i > 39)
      assert.deepStrictEqual(sequences, expected, "only the unconcealed 4 of the long gap are missing")
      assert.isTrue(chunks.every((c) => c.samples.length === 320))
      // The concealed chunks sit on the media clock between their neighbours and carry the tone on.
      const at = (n: number) => chunks[sequences.indexOf(n)]!
      assert.deepStrictEqual([9, 10, 11, 20, 21, 35].map((n) => at(n).captureTimeMs - t0), [180, 200, 220, 400, 420, 700])
      assert.closeTo(dominantFrequency(at(10).samples, 16_000), 440, 15)
    } finally {
      decoder.free()
    }
  })

  it("a packet libopus refuses is an opus_decode_error with libopus' message, nothing on stderr", async () => {
    const packets = await captureOpusRtp({ tones: [440], toneMs: 100 })
    const decoder = await OpusRtpDecoder.make({ payloadType: 111 })
    const printed = vi.spyOn(console, "error")
    try {
      const first = parsed(packets[0]!.packet)
      assert.isTrue(Result.isSuccess(decoder.decode(packets[0]!.packet, packets[0]!.arrivalMs)))
      // Code 3, padding flag, a padding length that runs past the end: passes checkOpusPacket, libopus says -4.
      const corrupt = rtp({ sequence: first.sequence + 1, ssrc: first.ssrc, payloadType: 111, payload: Uint8Array.of(0xff, 0x41, 0xff, 0xff) })
      const result = decoder.decode(corrupt, Date.now())
      assert.isTrue(Result.isFailure(result))
      if (Result.isFailure(result)) {
        assert.strictEqual(result.failure.reason, "opus_decode_error")
        assert.include(result.failure.detail, "OPUS_INVALID_PACKET")
      }
      assert.strictEqual(printed.mock.calls.length, 0, "libopus' line did not reach console.error")
      // The decoder goes on with the next packet.
      assert.isTrue(Result.isSuccess(decoder.decode(withSequence(packets[1]!.packet, first.sequence + 2), Date.now())))
    } finally {
      printed.mockRestore()
      decoder.free()
    }
  })
})
