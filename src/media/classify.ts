import { Result } from "effect"
import type { VideoCodec } from "../schemas/aicore.ts"

/**
 * Video frame classification from one RTP payload: depacketizes just far enough to tell whether
 * the packet opens a frame and whether it carries key-frame data. Pure, no copies, never throws:
 * a payload the packetization rules forbid is a typed `PayloadRejected`.
 *
 * - H.264 (RFC 6184, packetization modes 0 and 1): single NAL unit (1-23), STAP-A (24), FU-A (28).
 * - H.265 (RFC 7798, no DONL): single NAL unit (0-47), AP (48), FU (49).
 * - VP8 (RFC 7741): payload descriptor with X/I/L/T/K extensions, S bit and partition index.
 * - VP9 (RFC 9628): payload descriptor with I/P/L/F/B/E/V bits, layer indices, P_DIFFs and the
 *   scalability structure.
 */

export type { VideoCodec }

export interface PacketClass {
  readonly codec: VideoCodec
  /**
   * The packet opens a frame. VP8: S=1 with partition index 0; VP9: B=1. H.264/H.265 have no
   * explicit frame-start flag: true when the first NAL unit begun in this packet can only open an
   * access unit (AUD, parameter sets, prefix SEI, or the first slice of a picture:
   * first_mb_in_slice == 0 / first_slice_segment_in_pic_flag); the RTP timestamp stays the
   * authoritative frame boundary.
   */
  readonly start: boolean
  /**
   * The packet carries key-frame data. H.264: IDR slice (5), SPS (7) or PPS (8); H.265: IRAP
   * slice (16-23), VPS/SPS/PPS (32-34); VP8: S=1, PID=0 and the payload header's P bit 0; VP9:
   * B=1, descriptor P=0 and the uncompressed header's frame_type KEY_FRAME.
   */
  readonly key: boolean
  /** VP9 only: the E bit (end of frame). */
  readonly end?: boolean
  /** H.264/H.265: NAL unit types begun in this packet (for an FU, the fragmented type). */
  readonly nalTypes: ReadonlyArray<number>
}

export type PayloadRejectReason = "malformed" | "unsupported"

export interface PayloadRejected {
  readonly _tag: "PayloadRejected"
  readonly codec: VideoCodec
  readonly reason: PayloadRejectReason
  readonly detail: string
}

type Classified = Result.Result<PacketClass, PayloadRejected>

const reject = (codec: VideoCodec, detail: string, reason: PayloadRejectReason = "malformed"): Classified =>
  Result.fail({ _tag: "PayloadRejected", codec, reason, detail })

const ok = (value: PacketClass): Classified => Result.succeed(value)
/** VP8/VP9 have no NAL units: one shared empty list instead of one per packet. */
const NO_NAL_TYPES: ReadonlyArray<number> = []

// ---------------------------------------------------------------------------------------------
// H.264

const H264_IDR = 5
const h264Key = (type: number): boolean => type === H264_IDR || type === 7 || type === 8

/** Whether a NAL unit of `type` whose body starts at `payload[bodyAt]` opens an access unit. */
const h264OpensAccessUnit = (type: number, payload: Uint8Array, bodyAt: number): boolean => {
  if (type === 6 || type === 7 || type === 8 || type === 9) return true
  // Slices (1-5): first_mb_in_slice is ue(v); it is 0 exactly when its first bit is 1.
  if (type >= 1 && type <= 5) return bodyAt < payload.length && (payload[bodyAt]! & 0x80) !== 0
  return false
}

export const classifyH264 = (payload: Uint8Array): Classified => {
  if (payload.length < 1) return reject("H264", "empty payload")
  const header = payload[0]!
  if ((header & 0x80) !== 0) return reject("H264", "forbidden_zero_bit set")
  const type = header & 0x1f
  if (type >= 1 && type <= 23) {
    if (payload.length < 2) return reject("H264", `NAL unit type ${type} without a body`)
    return ok({ codec: "H264", start: h264OpensAccessUnit(type, payload, 1), key: h264Key(type), nalTypes: [type] })
  }
  if (type === 24) {
    // STAP-A: [size (16) | NAL unit]+
    const types: Array<number> = []
    let start = false
    let offset = 1
    while (offset < payload.length) {
      if (offset + 2 > payload.length) return reject("H264", "STAP-A size field runs past the end")
      const size = (payload[offset]! << 8) | payload[offset + 1]!
      offset += 2
      if (size === 0) return reject("H264", "STAP-A aggregation unit of size 0")
      if (offset + size > payload.length) return reject("H264", `STAP-A unit of ${size} bytes runs past the end`)
      const nal = payload[offset]!
      if ((nal & 0x80) !== 0) return reject("H264", "STAP-A unit with forbidden_zero_bit set")
      const inner = nal & 0x1f
      if (inner === 0 || inner >= 24) return reject("H264", `STAP-A carries NAL unit type ${inner}`)
      if (types.length === 0) start = h264OpensAccessUnit(inner, payload, offset + 1)
      types.push(inner)
      offset += size
    }
    if (types.length === 0) return reject("H264", "STAP-A without aggregation units")
    return ok({ codec: "H264", start, key: types.some(h264Key), nalTypes: types })
  }
  if (type === 28) {
    if (payload.length < 3) return reject("H264", `FU-A of ${payload.length} bytes`)
    const fu = payload[1]!
    const s = (fu & 0x80) !== 0
    const e = (fu & 0x40) !== 0
    const inner = fu & 0x1f
    if (s && e) return reject("H264", "FU-A with both start and end bits")
    if (inner === 0 || inner >= 24) return reject("H264", `FU-A fragments NAL unit type ${inner}`)
    return ok({
      codec: "H264",
      start: s && h264OpensAccessUnit(inner, payload, 2),
      key: s && h264Key(inner),
      nalTypes: s ? [inner] : []
    })
  }
  if (type === 25 || type === 26 || type === 27 || type === 29) {
    return reject("H264", `packetization type ${type} (interleaved mode) is not supported`, "unsupported")
  }
  return reject("H264", `reserved NAL unit type ${type}`)
}

// ---------------------------------------------------------------------------------------------
// H.265

const h265Key = (type: number): boolean => (type >= 16 && type <= 23) || (type >= 32 && type <= 34)

const h265OpensAccessUnit = (type: number, payload: Uint8Array, bodyAt: number): boolean => {
  if (type === 32 || type === 33 || type === 34 || type === 35 || type === 39) return true
  // VCL (0-31): first_slice_segment_in_pic_flag is the first bit of the slice segment header.
  if (type <= 31) return bodyAt < payload.length && (payload[bodyAt]! & 0x80) !== 0
  return false
}

/** Checks a two-byte H.265 NAL unit header at `at`; returns its type or an error text. */
const h265Header = (payload: Uint8Array, at: number): number | string => {
  if (at + 2 > payload.length) return "NAL unit header runs past the end"
  const b0 = payload[at]!
  const b1 = payload[at + 1]!
  if ((b0 & 0x80) !== 0) return "forbidden_zero_bit set"
  if ((b1 & 0x07) === 0) return "nuh_temporal_id_plus1 is 0"
  return (b0 >> 1) & 0x3f
}

export const classifyH265 = (payload: Uint8Array): Classified => {
  const type = h265Header(payload, 0)
  if (typeof type === "string") return reject("H265", type)
  if (type <= 47) {
    if (payload.length < 3) return reject("H265", `NAL unit type ${type} without a body`)
    return ok({ codec: "H265", start: h265OpensAccessUnit(type, payload, 2), key: h265Key(type), nalTypes: [type] })
  }
  if (type === 48) {
    // AP: [size (16) | NAL unit]+ (no DONL: sprop-max-don-diff is 0)
    const types: Array<number> = []
    let start = false
    let offset = 2
    while (offset < payload.length) {
      if (offset + 2 > payload.length) return reject("H265", "AP size field runs past the end")
      const size = (payload[offset]! << 8) | payload[offset + 1]!
      offset += 2
      if (size < 2) return reject("H265", `AP unit of size ${size}`)
      if (offset + size > payload.length) return reject("H265", `AP unit of ${size} bytes runs past the end`)
      const inner = h265Header(payload, offset)
      if (typeof inner === "string") return reject("H265", `AP unit: ${inner}`)
      if (inner >= 48) return reject("H265", `AP carries NAL unit type ${inner}`)
      if (types.length === 0) start = h265OpensAccessUnit(inner, payload, offset + 2)
      types.push(inner)
      offset += size
    }
    if (types.length < 2) return reject("H265", `AP with ${types.length} aggregation unit(s), at least 2 required`)
    return ok({ codec: "H265", start, key: types.some(h265Key), nalTypes: types })
  }
  if (type === 49) {
    if (payload.length < 4) return reject("H265", `FU of ${payload.length} bytes`)
    const fu = payload[2]!
    const s = (fu & 0x80) !== 0
    const e = (fu & 0x40) !== 0
    const inner = fu & 0x3f
    if (s && e) return reject("H265", "FU with both start and end bits")
    if (inner >= 48) return reject("H265", `FU fragments NAL unit type ${inner}`)
    return ok({
      codec: "H265",
      start: s && h265OpensAccessUnit(inner, payload, 3),
      key: s && h265Key(inner),
      nalTypes: s ? [inner] : []
    })
  }
  if (type === 50) return reject("H265", "PACI packets are not supported", "unsupported")
  return reject("H265", `unspecified NAL unit type ${type}`)
}

// ---------------------------------------------------------------------------------------------
// VP8

export const classifyVp8 = (payload: Uint8Array): Classified => {
  if (payload.length < 1) return reject("VP8", "empty payload")
  const b0 = payload[0]!
  const x = (b0 & 0x80) !== 0
  const s = (b0 & 0x10) !== 0
  const pid = b0 & 0x07
  let offset = 1
  if (x) {
    if (offset >= payload.length) return reject("VP8", "extension byte runs past the end")
    const ext = payload[offset++]!
    const i = (ext & 0x80) !== 0
    const l = (ext & 0x40) !== 0
    const t = (ext & 0x20) !== 0
    const k = (ext & 0x10) !== 0
    if (l && !t) return reject("VP8", "L bit set without the T bit")
    if (i) {
      if (offset >= payload.length) return reject("VP8", "PictureID runs past the end")
      offset += (payload[offset]! & 0x80) !== 0 ? 2 : 1
    }
    if (l) offset += 1
    if (t || k) offset += 1
  }
  if (offset >= payload.length) return reject("VP8", "payload descriptor leaves no VP8 payload")
  const start = s && pid === 0
  let key = false
  if (start) {
    // VP8 payload header (RFC 7741 4.3 / RFC 6386 9.1): frame tag, P (inverse key frame) in bit 0.
    if (offset + 3 > payload.length) return reject("VP8", "frame tag runs past the end")
    key = (payload[offset]! & 0x01) === 0
    if (key) {
      if (offset + 10 > payload.length) return reject("VP8", "key frame header runs past the end")
      if (payload[offset + 3] !== 0x9d || payload[offset + 4] !== 0x01 || payload[offset + 5] !== 0x2a) {
        return reject("VP8", "key frame without the 9d 01 2a start code")
      }
    }
  }
  return ok({ codec: "VP8", start, key, nalTypes: NO_NAL_TYPES })
}

// ---------------------------------------------------------------------------------------------
// VP9

/** Whether the VP9 uncompressed header at `at` is a key frame (VP9 bitstream spec 6.2); or an error text. */
const vp9HeaderIsKey = (payload: Uint8Array, at: number): boolean | string => {
  if (at >= payload.length) return "uncompressed header runs past the end"
  const b = payload[at]!
  if (b >> 6 !== 0b10) return "frame_marker is not 2"
  const profile = ((b >> 5) & 1) | (((b >> 4) & 1) << 1)
  // Bits (MSB first) after the profile: [reserved_zero if profile 3], show_existing_frame, frame_type.
  if (profile === 3 && ((b >> 3) & 1) !== 0) return "reserved_zero bit set"
  let bit = profile === 3 ? 5 : 4
  const read = (): number | undefined => {
    const byte = at + (bit >> 3)
    if (byte >= payload.length) return undefined
    const value = (payload[byte]! >> (7 - (bit & 7))) & 1
    bit += 1
    return value
  }
  const showExisting = read()
  if (showExisting === undefined) return "uncompressed header runs past the end"
  if (showExisting === 1) return false
  const frameType = read()
  if (frameType === undefined) return "uncompressed header runs past the end"
  return frameType === 0
}

export const classifyVp9 = (payload: Uint8Array): Classified => {
  if (payload.length < 1) return reject("VP9", "empty payload")
  const b0 = payload[0]!
  const i = (b0 & 0x80) !== 0
  const p = (b0 & 0x40) !== 0
  const l = (b0 & 0x20) !== 0
  const f = (b0 & 0x10) !== 0
  const b = (b0 & 0x08) !== 0
  const e = (b0 & 0x04) !== 0
  const v = (b0 & 0x02) !== 0
  let offset = 1
  const need = (n: number, what: string): string | undefined => offset + n > payload.length ? `${what} runs past the end` : undefined
  if (i) {
    const err = need(1, "PictureID")
    if (err !== undefined) return reject("VP9", err)
    offset += (payload[offset]! & 0x80) !== 0 ? 2 : 1
  }
  if (l) {
    const err = need(f ? 1 : 2, "layer indices")
    if (err !== undefined) return reject("VP9", err)
    offset += f ? 1 : 2 // TID/U/SID/D, plus TL0PICIDX in non-flexible mode
  }
  if (f && p) {
    if (!i) return reject("VP9", "flexible mode requires a PictureID")
    for (let count = 0;; count++) {
      if (count === 3) return reject("VP9", "more than 3 P_DIFF references")
      const err = need(1, "P_DIFF")
      if (err !== undefined) return reject("VP9", err)
      const more = (payload[offset]! & 0x01) !== 0
      offset += 1
      if (!more) break
    }
  }
  if (v) {
    const err = need(1, "scalability structure")
    if (err !== undefined) return reject("VP9", err)
    const ss = payload[offset++]!
    const spatialLayers = (ss >> 5) + 1
    const y = (ss & 0x10) !== 0
    const g = (ss & 0x08) !== 0
    if (y) offset += 4 * spatialLayers
    if (g) {
      const errG = need(1, "N_G")
      if (errG !== undefined) return reject("VP9", errG)
      const groups = payload[offset++]!
      for (let n = 0; n < groups; n++) {
        const errT = need(1, "picture group")
        if (errT !== undefined) return reject("VP9", errT)
        const refs = (payload[offset]! >> 2) & 0x03
        offset += 1 + refs
      }
    }
    if (offset > payload.length) return reject("VP9", "scalability structure runs past the end")
  }
  if (offset >= payload.length) return reject("VP9", "payload descriptor leaves no VP9 payload")
  let key = false
  if (b && !p) {
    const headerKey = vp9HeaderIsKey(payload, offset)
    if (typeof headerKey === "string") return reject("VP9", headerKey)
    key = headerKey
  }
  return ok({ codec: "VP9", start: b, key, end: e, nalTypes: NO_NAL_TYPES })
}

// ---------------------------------------------------------------------------------------------

export const classifyPayload = (codec: VideoCodec, payload: Uint8Array): Classified => {
  switch (codec) {
    case "H264":
      return classifyH264(payload)
    case "H265":
      return classifyH265(payload)
    case "VP8":
      return classifyVp8(payload)
    case "VP9":
      return classifyVp9(payload)
  }
}
