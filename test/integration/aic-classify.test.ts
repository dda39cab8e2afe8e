import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { classifyPayload, type VideoCodec } from "../../src/media/classify.ts"
import { type AssembledFrame, FrameAssembler } from "../../src/media/frames.ts"
import { parseRtp, type RtpPacket } from "../../src/media/rtp.ts"
import { captureVideoRtp, probeKeyFrames, VIDEO_FPS, VIDEO_GOP, VIDEO_PAYLOAD_TYPES, VIDEO_SECONDS } from "../support/ffmpeg-video.ts"

const CODECS: ReadonlyArray<VideoCodec> = ["H264", "H265", "VP8", "VP9"]
const FRAMES = VIDEO_FPS * VIDEO_SECONDS
const EXPECTED_KEYS = Array.from({ length: Math.ceil(FRAMES / VIDEO_GOP) }, (_, i) => i * VIDEO_GOP)

const parseAll = (datagrams: ReadonlyArray<Buffer>): Array<RtpPacket> =>
  datagrams.map((d) => {
    const parsed = parseRtp(d)
    if (Result.isFailure(parsed)) throw new Error(`bad RTP from ffmpeg: ${parsed.failure.detail}`)
    return parsed.success
  })

/** Classifies and assembles `packets`; every payload must classify. */
const assemble = (codec: VideoCodec, packets: ReadonlyArray<RtpPacket>): Array<AssembledFrame<RtpPacket>> => {
  const assembler = new FrameAssembler<RtpPacket>()
  const frames: Array<AssembledFrame<RtpPacket>> = []
  for (const packet of packets) {
    const cls = classifyPayload(codec, packet.payload)
    if (Result.isFailure(cls)) throw new Error(`seq ${packet.sequence}: ${cls.failure.detail}`)
    frames.push(...assembler.push(packet, cls.success))
  }
  frames.push(...assembler.flush())
  return frames
}

const keyIndices = (frames: ReadonlyArray<AssembledFrame<RtpPacket>>): Array<number> => frames.flatMap((f, i) => (f.key ? [i] : []))

const dir = mkdtempSync(join(tmpdir(), "aic-classify-"))
const captures = new Map<VideoCodec, Array<RtpPacket>>()
const capture = async (codec: VideoCodec): Promise<Array<RtpPacket>> => {
  const cached = captures.get(codec)
  if (cached !== undefined) return cached
  const packets = parseAll(await captureVideoRtp(codec))
  captures.set(codec, packets)
  return packets
}

describe("AIC frame classification on real encoder RTP", () => {
  for (const codec of CODECS) {
    it(`${codec}: every frame complete, key frames where the encoder put them`, async () => {
      const packets = await capture(codec)
      assert.isTrue(packets.every((p) => p.payloadType === VIDEO_PAYLOAD_TYPES[codec]))
      const frames = assemble(codec, packets)
      const keys = keyIndices(frames)
      const probed = await probeKeyFrames(codec, join(dir, `${codec}.out`))
      console.log(
        `aic-classify ${codec} packets=${packets.length} frames=${frames.length} keys=${keys.join(",")} ` +
          `ffprobe_frames=${probed.frames} ffprobe_keys=${probed.keys.join(",")}`
      )
      assert.strictEqual(frames.length, FRAMES)
      assert.isTrue(frames.every((f) => f.complete && f.lost === 0 && f.gapBefore === 0 && f.startSeen && f.markerSeen))
      assert.deepStrictEqual(keys, EXPECTED_KEYS)
      assert.strictEqual(probed.frames, FRAMES)
      assert.deepStrictEqual(keys, probed.keys)
      // Frames are in timestamp order, one RTP timestamp each.
      assert.strictEqual(new Set(frames.map((f) => f.timestamp)).size, FRAMES)
    })

    it(`${codec}: a packet dropped inside a frame marks that frame incomplete`, async () => {
      const packets = await capture(codec)
      const frames = assemble(codec, packets)
      // A frame after the first (so that there is a previous frame to measure the gap from).
      const target = frames.findIndex((f, i) => i > 0 && f.packets.length >= 3)
      assert.isAtLeast(target, 1, "a frame of 3+ packets")
      const victimFrame = frames[target]!
      const dropped = victimFrame.packets[1]!.sequence
      const lossy = assemble(codec, packets.filter((p) => p.sequence !== dropped))
      assert.strictEqual(lossy.length, FRAMES)
      const hit = lossy[target]!
      assert.strictEqual(hit.timestamp, victimFrame.timestamp)
      assert.isFalse(hit.complete)
      assert.strictEqual(hit.lost, 1)
      assert.isTrue(lossy.every((f, i) => i === target || f.complete))

      // Losing a frame's head: no gap inside what is left, but the head is missing. H.26x frames
      // open with several packets that can each begin an access unit (parameter sets, SEI, the
      // first slice), so the whole leading run of such packets is dropped.
      const opens = (p: RtpPacket) => {
        const cls = classifyPayload(codec, p.payload)
        return Result.isSuccess(cls) && cls.success.start
      }
      let headCount = 0
      while (opens(victimFrame.packets[headCount]!)) headCount++
      assert.isAtLeast(headCount, 1)
      assert.isBelow(headCount, victimFrame.packets.length)
      const heads = new Set(victimFrame.packets.slice(0, headCount).map((p) => p.sequence))
      const headless = assemble(codec, packets.filter((p) => !heads.has(p.sequence)))
      const cut = headless.find((f) => f.timestamp === victimFrame.timestamp)!
      assert.isFalse(cut.startSeen)
      assert.isFalse(cut.complete)
      assert.strictEqual(cut.lost, 0)
      assert.strictEqual(cut.gapBefore, headCount)

      // Losing the marker packet: the frame is emitted incomplete when the next timestamp arrives.
      const tail = victimFrame.packets[victimFrame.packets.length - 1]!.sequence
      const tailless = assemble(codec, packets.filter((p) => p.sequence !== tail))
      const open = tailless[target]!
      assert.isFalse(open.markerSeen)
      assert.isFalse(open.complete)
      assert.isTrue(tailless.every((f, i) => i === target || f.complete))
    })
  }

  it("reordered and duplicated packets inside a frame still assemble complete", async () => {
    const packets = await capture("H264")
    const frames = assemble("H264", packets)
    const target = frames.findIndex((f) => f.packets.length >= 3)
    const [a, b] = [frames[target]!.packets[0]!, frames[target]!.packets[1]!]
    const shuffled = packets.flatMap((p) => (p === a ? [] : p === b ? [b, a, b] : [p]))
    const again = assemble("H264", shuffled)
    assert.strictEqual(again.length, FRAMES)
    assert.isTrue(again.every((f) => f.complete))
    assert.deepStrictEqual(again[target]!.packets.map((p) => p.sequence), frames[target]!.packets.map((p) => p.sequence))
  })

  it("assembles across the 16-bit sequence wrap", async () => {
    const packets = await capture("H265")
    const first = packets[0]!.sequence
    // The wrap lands inside the first (multi-packet) key frame.
    const wrapped = packets.map((p) => ({ ...p, sequence: (p.sequence - first + 65_534) & 0xffff }))
    const frames = assemble("H265", wrapped)
    assert.strictEqual(frames.length, FRAMES)
    assert.isTrue(frames.every((f) => f.complete))
    assert.strictEqual(frames[0]!.firstSeq, 65_534)
    assert.deepStrictEqual(keyIndices(frames), EXPECTED_KEYS)
  })

  it("separates frames by SSRC", async () => {
    const packets = await capture("VP8")
    const other = packets.map((p) => ({ ...p, ssrc: (p.ssrc + 1) >>> 0 }))
    const interleaved = packets.flatMap((p, i) => [p, other[i]!])
    const frames = assemble("VP8", interleaved)
    assert.strictEqual(frames.length, 2 * FRAMES)
    assert.isTrue(frames.every((f) => f.complete))
  })
})

const bytes = (...values: ReadonlyArray<number>): Uint8Array => Uint8Array.from(values)

const MALFORMED: Record<VideoCodec, ReadonlyArray<readonly [string, Uint8Array]>> = {
  H264: [
    ["empty", bytes()],
    ["forbidden bit", bytes(0x85, 0x88)],
    ["reserved type 0", bytes(0x00, 0x01)],
    ["reserved type 30", bytes(0x1e, 0x01)],
    ["NAL without body", bytes(0x65)],
    ["STAP-A size past end", bytes(0x18, 0x00, 0x09, 0x67, 0x42)],
    ["STAP-A truncated size", bytes(0x18, 0x00, 0x02, 0x67, 0x42, 0x00)],
    ["STAP-A zero size", bytes(0x18, 0x00, 0x00)],
    ["STAP-A empty", bytes(0x18)],
    ["FU-A short", bytes(0x7c, 0x85)],
    ["FU-A start and end", bytes(0x7c, 0xc5, 0x88)],
    ["FU-A of a STAP-A", bytes(0x7c, 0x98, 0x88)],
    ["STAP-B unsupported", bytes(0x19, 0x00, 0x00, 0x00)]
  ],
  H265: [
    ["empty", bytes()],
    ["one byte", bytes(0x26)],
    ["forbidden bit", bytes(0xa6, 0x01, 0x80)],
    ["temporal id 0", bytes(0x26, 0x00, 0x80)],
    ["NAL without body", bytes(0x26, 0x01)],
    ["AP size past end", bytes(0x60, 0x01, 0x00, 0x10, 0x40, 0x01)],
    ["AP single unit", bytes(0x60, 0x01, 0x00, 0x03, 0x40, 0x01, 0x0c)],
    ["AP nested AP", bytes(0x60, 0x01, 0x00, 0x03, 0x60, 0x01, 0x0c, 0x00, 0x03, 0x40, 0x01, 0x0c)],
    ["FU short", bytes(0x62, 0x01, 0x93)],
    ["FU start and end", bytes(0x62, 0x01, 0xd3, 0x80)],
    ["FU of an FU", bytes(0x62, 0x01, 0xb1, 0x80)],
    ["PACI unsupported", bytes(0x64, 0x01, 0x00, 0x00)],
    ["unspecified type 55", bytes(0x6e, 0x01, 0x00)]
  ],
  VP8: [
    ["empty", bytes()],
    ["descriptor only", bytes(0x10)],
    ["X without extension byte", bytes(0x90)],
    ["PictureID past end", bytes(0x90, 0x80)],
    ["L without T", bytes(0x90, 0x40, 0x00, 0x00)],
    ["long PictureID leaves nothing", bytes(0x90, 0x80, 0x80, 0x01)],
    ["frame tag short", bytes(0x10, 0x00, 0x00)],
    ["key frame without start code", bytes(0x10, 0x00, 0x00, 0x00, 0x11, 0x22, 0x33, 0x40, 0x01, 0xf0, 0x00)],
    ["key frame header short", bytes(0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a)]
  ],
  VP9: [
    ["empty", bytes()],
    ["descriptor only", bytes(0x0c)],
    ["PictureID past end", bytes(0x8c)],
    ["layer indices past end", bytes(0x2c, 0x00)],
    ["flexible P without PictureID", bytes(0x5c, 0x02, 0x00)],
    ["four P_DIFFs", bytes(0xdc, 0x01, 0x03, 0x03, 0x03, 0x02, 0x00)],
    ["SS resolutions past end", bytes(0x0e, 0x10, 0x01, 0x40)],
    ["bad frame marker", bytes(0x0c, 0x00)],
    ["header short", bytes(0x0c)]
  ]
}

describe("AIC frame classification rejects malformed payloads", () => {
  for (const codec of CODECS) {
    it(`${codec}`, () => {
      for (const [name, payload] of MALFORMED[codec]) {
        const result = classifyPayload(codec, payload)
        assert.isTrue(Result.isFailure(result), `${codec} ${name} accepted`)
        if (Result.isFailure(result)) {
          assert.strictEqual(result.failure._tag, "PayloadRejected")
          assert.strictEqual(result.failure.codec, codec)
        }
      }
      // Truncations of a valid start-of-frame packet never throw.
      const valid: Record<VideoCodec, Uint8Array> = {
        H264: bytes(0x7c, 0x85, 0x88, 0x80),
        H265: bytes(0x62, 0x01, 0x93, 0x80),
        VP8: bytes(0x90, 0xe0, 0x80, 0x01, 0x00, 0x00, 0x50, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00),
        VP9: bytes(0xaa, 0x00, 0x00, 0x00, 0x00, 0x82, 0x49, 0x83, 0x42)
      }
      const whole = classifyPayload(codec, valid[codec])
      assert.isTrue(Result.isSuccess(whole) && whole.success.start && whole.success.key, `${codec} valid payload`)
      for (let n = 0; n < valid[codec].length; n++) {
        assert.doesNotThrow(() => classifyPayload(codec, valid[codec].subarray(0, n)))
      }
    })
  }
})

process.on("exit", () => rmSync(dir, { recursive: true, force: true }))
