import { Result } from "effect"

/**
 * RTP (RFC 3550 section 5.1) parsing and serialization, with the header extension elements of
 * RFC 8285 in both forms:
 *
 * - one-byte form: profile `0xBEDE`; each element is a byte `id(4) | len-1(4)` then 1..16 data
 *   bytes; ids 1..14; id 15 stops parsing (the rest of the block is ignored); zero bytes are
 *   padding and may sit between elements and after the last one.
 * - two-byte form: profile `0x100X` (`X` = the 4 "appbits"); each element is `id(8) len(8)`
 *   then 0..255 data bytes; ids 1..255; zero bytes are padding.
 *
 * Any other profile value is kept as an opaque block (`Raw`). One parser serves video and audio:
 * {@link RtpParseOptions} says what the audio path tolerates that the video path rejects.
 *
 * Parsing never copies: `payload`, the extension `body` and every element's `data` are views
 * (`subarray`) of the packet's bytes. Malformed packets are returned as a {@link RtpParseError}
 * (a `Result` failure), never thrown.
 */

export const RTP_VERSION = 2
export const RTP_FIXED_HEADER_BYTES = 12
/** RFC 8285 one-byte form's "defined by profile" value. */
export const ONE_BYTE_PROFILE = 0xbede
/** RFC 8285 two-byte form's "defined by profile" value, low 4 bits are the appbits. */
export const TWO_BYTE_PROFILE = 0x1000
export const ONE_BYTE_MAX_ID = 14
export const ONE_BYTE_MAX_DATA = 16
export const TWO_BYTE_MAX_ID = 255
export const TWO_BYTE_MAX_DATA = 255

/** One extension element; `data` is a view of the packet (for parsed packets). */
export interface RtpExtensionElement {
  readonly id: number
  readonly data: Uint8Array
}

/** A parsed extension element, with its place in the extension body (element header included). */
export interface ParsedExtensionElement extends RtpExtensionElement {
  /** Offset of the element's header byte(s) in `body`. */
  readonly start: number
  /** Offset just past the element's data in `body`. */
  readonly end: number
}

/** The header extension as given to {@link serializeRtp}. */
export type RtpExtensionInit =
  | { readonly _tag: "OneByte"; readonly elements: ReadonlyArray<RtpExtensionElement> }
  | { readonly _tag: "TwoByte"; readonly appBits?: number; readonly elements: ReadonlyArray<RtpExtensionElement> }
  /** Any other profile: `body` is written verbatim (its length must be a multiple of 4). */
  | { readonly _tag: "Raw"; readonly profile: number; readonly body: Uint8Array }

/** The header extension of a parsed packet. `body` is the block after its 4-byte header (a view). */
export type RtpHeaderExtension =
  | {
    readonly _tag: "OneByte"
    readonly profile: number
    readonly body: Uint8Array
    readonly elements: ReadonlyArray<ParsedExtensionElement>
  }
  | {
    readonly _tag: "TwoByte"
    readonly profile: number
    readonly appBits: number
    readonly body: Uint8Array
    readonly elements: ReadonlyArray<ParsedExtensionElement>
  }
  /**
   * Kept opaque: a profile that is not RFC 8285, or any block when parsed with
   * `extensionElements: "skip"` (then {@link getExtension} and the editors read its elements on demand).
   */
  | { readonly _tag: "Raw"; readonly profile: number; readonly body: Uint8Array }

/** What {@link parseRtp} checks beyond RFC 3550's framing. */
export interface RtpParseOptions {
  /**
   * `"parse"` (default): RFC 8285 elements are read; one that runs past its block fails the packet
   * (`extension_element_overflow`). `"skip"`: the block is only bounds-checked by its length word
   * and kept as `Raw`, its elements neither read nor checked: for a path that uses no element
   * (Opus audio), where a sender's malformed element must not cost the audio, and no element
   * objects are made per packet.
   */
  readonly extensionElements?: "parse" | "skip"
}

/** {@link RtpParseOptions} of the audio path: elements skipped (one shared object, nothing made per call). */
export const SKIP_EXTENSION_ELEMENTS: RtpParseOptions = { extensionElements: "skip" }

/** What {@link serializeRtp} needs. */
export interface RtpPacketInit {
  readonly marker?: boolean
  readonly payloadType: number
  readonly sequence: number
  readonly timestamp: number
  readonly ssrc: number
  readonly csrcs?: ReadonlyArray<number>
  readonly extension?: RtpExtensionInit | undefined
  readonly payload: Uint8Array
  /** Padding bytes after the payload (0: no padding, P bit clear; else 1..255, P bit set). */
  readonly paddingLength?: number
}

/** A parsed RTP packet. Every `Uint8Array` in it is a view of `bytes`. */
export interface RtpPacket {
  readonly version: 2
  readonly marker: boolean
  readonly payloadType: number
  readonly sequence: number
  readonly timestamp: number
  readonly ssrc: number
  readonly csrcs: ReadonlyArray<number>
  readonly extension: RtpHeaderExtension | undefined
  readonly payload: Uint8Array
  /** 0 when the P bit is clear; else the padding byte count (last byte of the packet). */
  readonly paddingLength: number
  /** The whole packet (the bytes given to {@link parseRtp}). */
  readonly bytes: Uint8Array
}

export type RtpParseErrorReason =
  /** Fewer than 12 bytes. */
  | "too_short"
  /** Version field is not 2. */
  | "bad_version"
  /** The CSRC list runs past the end. */
  | "csrc_overflow"
  /** The header extension (its 4-byte header or its length in words) runs past the end. */
  | "extension_overflow"
  /** An RFC 8285 element's header or data runs past the end of the extension block. */
  | "extension_element_overflow"
  /** P bit set and the padding count is 0 or reaches into the header. */
  | "bad_padding"

/** A plain tagged value, not an `Error`: a flood of malformed packets builds no stack traces. */
export interface RtpParseError {
  readonly _tag: "RtpParseError"
  readonly reason: RtpParseErrorReason
  readonly detail: string
  /** The RTP sequence number, when the fixed header was readable. */
  readonly sequence?: number
}

export type RtpExtensionErrorReason =
  /** Id outside 1..255 (or not an integer). */
  | "bad_id"
  /** Data longer than 255 bytes. */
  | "data_too_long"
  /** The packet carries a header extension that is not RFC 8285 (neither 0xBEDE nor 0x100X). */
  | "foreign_extension"
  /** The extension block would exceed 65535 words. */
  | "extension_too_large"

export interface RtpExtensionError {
  readonly _tag: "RtpExtensionError"
  readonly reason: RtpExtensionErrorReason
  readonly detail: string
}

const parseError = (reason: RtpParseErrorReason, detail: string, sequence?: number): Result.Result<never, RtpParseError> =>
  Result.fail(sequence === undefined ? { _tag: "RtpParseError", reason, detail } : { _tag: "RtpParseError", reason, detail, sequence })

const extensionError = (reason: RtpExtensionErrorReason, detail: string): Result.Result<never, RtpExtensionError> =>
  Result.fail({ _tag: "RtpExtensionError", reason, detail })

const isTwoByteProfile = (profile: number): boolean => (profile & 0xfff0) === TWO_BYTE_PROFILE
/** The profile is one of RFC 8285's two forms. */
const isRfc8285Profile = (profile: number): boolean => profile === ONE_BYTE_PROFILE || isTwoByteProfile(profile)

/** Parses the elements of a one-byte (`twoByte` false) or two-byte form block. */
const parseElements = (
  body: Uint8Array,
  twoByte: boolean
): Result.Result<ReadonlyArray<ParsedExtensionElement>, string> => {
  const elements: Array<ParsedExtensionElement> = []
  const length = body.byteLength
  let pos = 0
  while (pos < length) {
    const b = body[pos]!
    if (b === 0) {
      pos += 1 // padding
      continue
    }
    let id: number
    let dataLength: number
    let dataStart: number
    if (twoByte) {
      if (pos + 2 > length) return Result.fail(`two-byte element header at ${pos} runs past the block`)
      id = b
      dataLength = body[pos + 1]!
      dataStart = pos + 2
    } else {
      id = b >> 4
      if (id === 0) {
        // libwebrtc treats any byte with id 0 as one padding byte, whatever its length nibble
        pos += 1
        continue
      }
      if (id === 15) break // reserved: stop, ignore the rest of the block (RFC 8285 4.2)
      dataLength = (b & 0x0f) + 1
      dataStart = pos + 1
    }
    const end = dataStart + dataLength
    if (end > length) return Result.fail(`element ${id} of ${dataLength} bytes at ${pos} runs past the block`)
    elements.push({ id, data: body.subarray(dataStart, end), start: pos, end })
    pos = end
  }
  return Result.succeed(elements)
}

const u16 = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!
const u32 = (b: Uint8Array, at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0
/** Shared by every packet without CSRCs (most): one allocation less per packet. */
const NO_CSRCS: ReadonlyArray<number> = []

/**
 * Parses an RTP packet. Pure and copy-free: all byte fields of the result are views of `bytes`.
 * `options` (default: elements parsed and checked) are described at {@link RtpParseOptions}.
 */
export const parseRtp = (bytes: Uint8Array, options?: RtpParseOptions): Result.Result<RtpPacket, RtpParseError> => {
  const length = bytes.byteLength
  if (length < RTP_FIXED_HEADER_BYTES) return parseError("too_short", `${length} bytes, the fixed header is 12`)
  // Byte reads, not a DataView: parsing runs once per packet on the media path.
  const b0 = bytes[0]!
  const b1 = bytes[1]!
  const sequence = u16(bytes, 2)
  const version = b0 >> 6
  if (version !== RTP_VERSION) return parseError("bad_version", `RTP version ${version}`, sequence)
  const hasPadding = (b0 & 0x20) !== 0
  const hasExtension = (b0 & 0x10) !== 0
  const csrcCount = b0 & 0x0f
  let offset = RTP_FIXED_HEADER_BYTES + csrcCount * 4
  if (offset > length) return parseError("csrc_overflow", `${csrcCount} CSRCs run past the end`, sequence)
  let csrcs = NO_CSRCS
  if (csrcCount > 0) {
    const list: Array<number> = []
    for (let i = 0; i < csrcCount; i++) list.push(u32(bytes, RTP_FIXED_HEADER_BYTES + i * 4))
    csrcs = list
  }
  let extension: RtpHeaderExtension | undefined
  if (hasExtension) {
    if (offset + 4 > length) return parseError("extension_overflow", "header extension header runs past the end", sequence)
    const profile = u16(bytes, offset)
    const words = u16(bytes, offset + 2)
    const bodyStart = offset + 4
    offset = bodyStart + words * 4
    if (offset > length) {
      return parseError("extension_overflow", `header extension of ${words} words runs past the end`, sequence)
    }
    const body = bytes.subarray(bodyStart, offset)
    if (isRfc8285Profile(profile) && options?.extensionElements !== "skip") {
      const twoByte = profile !== ONE_BYTE_PROFILE
      const elements = parseElements(body, twoByte)
      if (Result.isFailure(elements)) return parseError("extension_element_overflow", elements.failure, sequence)
      extension = twoByte
        ? { _tag: "TwoByte", profile, appBits: profile & 0x0f, body, elements: elements.success }
        : { _tag: "OneByte", profile, body, elements: elements.success }
    } else {
      extension = { _tag: "Raw", profile, body }
    }
  }
  let paddingLength = 0
  if (hasPadding) {
    paddingLength = bytes[length - 1]!
    if (paddingLength === 0 || offset + paddingLength > length) {
      return parseError("bad_padding", `padding of ${paddingLength} bytes is invalid`, sequence)
    }
  }
  return Result.succeed({
    version: 2,
    marker: (b1 & 0x80) !== 0,
    payloadType: b1 & 0x7f,
    sequence,
    timestamp: u32(bytes, 4),
    ssrc: u32(bytes, 8),
    csrcs,
    extension,
    payload: bytes.subarray(offset, length - paddingLength),
    paddingLength,
    bytes
  })
}

/** True when an element must use the two-byte form (RFC 8285 4.2/4.3). */
export const needsTwoByteForm = (id: number, dataLength: number): boolean => id > ONE_BYTE_MAX_ID || dataLength === 0 || dataLength > ONE_BYTE_MAX_DATA

const pad4 = (n: number): number => (n + 3) & ~3

const elementsBodyLength = (elements: ReadonlyArray<RtpExtensionElement>, twoByte: boolean): number => {
  let n = 0
  for (const e of elements) n += (twoByte ? 2 : 1) + e.data.byteLength
  return pad4(n)
}

/** Writes elements in the given form at `out[at..]`; returns the offset past the last element. */
const writeElements = (out: Uint8Array, at: number, elements: ReadonlyArray<RtpExtensionElement>, twoByte: boolean): number => {
  let pos = at
  for (const e of elements) {
    if (twoByte) {
      out[pos] = e.id
      out[pos + 1] = e.data.byteLength
      pos += 2
    } else {
      out[pos] = (e.id << 4) | (e.data.byteLength - 1)
      pos += 1
    }
    out.set(e.data, pos)
    pos += e.data.byteLength
  }
  return pos
}

const extensionProfile = (ext: RtpExtensionInit): number =>
  ext._tag === "OneByte"
    ? ONE_BYTE_PROFILE
    : ext._tag === "TwoByte"
    ? TWO_BYTE_PROFILE | ((ext.appBits ?? 0) & 0x0f)
    : ext.profile

const extensionBodyLength = (ext: RtpExtensionInit): number =>
  ext._tag === "Raw" ? pad4(ext.body.byteLength) : elementsBodyLength(ext.elements, ext._tag === "TwoByte")

/**
 * Serializes a packet. Elements are written back to back, then zero padding to a 32-bit
 * boundary; padding is zeros with the count in the last byte. The caller keeps fields in range
 * (ids and lengths per form, payload type 0..127, at most 15 CSRCs, padding 0..255); numbers are
 * truncated to their field width.
 */
export const serializeRtp = (p: RtpPacketInit): Uint8Array => {
  const csrcs = p.csrcs ?? []
  const paddingLength = p.paddingLength ?? 0
  const ext = p.extension
  const extBody = ext === undefined ? 0 : extensionBodyLength(ext)
  const headerLength = RTP_FIXED_HEADER_BYTES + csrcs.length * 4
  const total = headerLength + (ext === undefined ? 0 : 4 + extBody) + p.payload.byteLength + paddingLength
  const out = new Uint8Array(total)
  const view = new DataView(out.buffer)
  view.setUint8(
    0,
    (RTP_VERSION << 6) | (paddingLength > 0 ? 0x20 : 0) | (ext === undefined ? 0 : 0x10) | (csrcs.length & 0x0f)
  )
  view.setUint8(1, (p.marker === true ? 0x80 : 0) | (p.payloadType & 0x7f))
  view.setUint16(2, p.sequence & 0xffff)
  view.setUint32(4, p.timestamp >>> 0)
  view.setUint32(8, p.ssrc >>> 0)
  csrcs.forEach((c, i) => view.setUint32(RTP_FIXED_HEADER_BYTES + i * 4, c >>> 0))
  let offset = headerLength
  if (ext !== undefined) {
    view.setUint16(offset, extensionProfile(ext))
    view.setUint16(offset + 2, extBody / 4)
    if (ext._tag === "Raw") out.set(ext.body, offset + 4)
    else writeElements(out, offset + 4, ext.elements, ext._tag === "TwoByte")
    offset += 4 + extBody
  }
  out.set(p.payload, offset)
  if (paddingLength > 0) out[total - 1] = paddingLength
  return out
}

/** Memory for a packet the caller then overwrites completely (every writer here does). */
export type PacketAllocator = (length: number) => Uint8Array

/**
 * `bytes` as a plain Uint8Array over the same memory (no copy). Node Buffers (mediasoup, dgram)
 * become plain views, so every later `subarray` is a cheap native one instead of a Buffer.
 */
export const plainView = (bytes: Uint8Array): Uint8Array =>
  Object.getPrototypeOf(bytes) === Uint8Array.prototype ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** Node's shared pool: one allocation per 8 KiB instead of one per packet. */
export const pooledAllocator: PacketAllocator = (length) => Buffer.allocUnsafe(length)

/**
 * Views of large slabs, one ArrayBuffer per `slabBytes`: for a hot path writing every packet
 * anew, where thousands of small ArrayBuffers would weigh on each young-generation GC. A slab is
 * freed with the last packet in it.
 */
export const slabAllocator = (slabBytes = 1 << 20): PacketAllocator => {
  let slab = new ArrayBuffer(slabBytes)
  let used = 0
  return (length) => {
    if (length > slabBytes) return new Uint8Array(length)
    if (used + length > slabBytes) {
      slab = new ArrayBuffer(slabBytes)
      used = 0
    }
    const out = new Uint8Array(slab, used, length)
    used += (length + 7) & ~7
    return out
  }
}

/** Which of the packet's bytes follow the header extension: payload and padding, verbatim. */
const tailOf = (packet: RtpPacket): Uint8Array => packet.bytes.subarray(packet.payload.byteOffset - packet.bytes.byteOffset)

/** Writes fixed header + CSRCs (X bit as given), an optional extension block, then `tail`. */
const assemble = (
  packet: RtpPacket,
  extension: { readonly profile: number; readonly body: ReadonlyArray<Uint8Array>; readonly bodyLength: number } | undefined,
  tail: Uint8Array,
  alloc: PacketAllocator
): Uint8Array => {
  const headerLength = RTP_FIXED_HEADER_BYTES + packet.csrcs.length * 4
  const extLength = extension === undefined ? 0 : 4 + pad4(extension.bodyLength)
  const out = alloc(headerLength + extLength + tail.byteLength)
  out.set(packet.bytes.subarray(0, headerLength), 0)
  out[0] = (out[0]! & ~0x10) | (extension === undefined ? 0 : 0x10)
  if (extension !== undefined) {
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength)
    view.setUint16(headerLength, extension.profile)
    view.setUint16(headerLength + 2, pad4(extension.bodyLength) / 4)
    let pos = headerLength + 4
    for (const chunk of extension.body) {
      out.set(chunk, pos)
      pos += chunk.byteLength
    }
  }
  out.set(tail, headerLength + extLength)
  return out
}

const MAX_BODY_BYTES = 0xffff * 4

/**
 * Replaces (`data` given) or removes (`data` undefined) the element `id`. Without a form switch
 * the other elements and the padding before each of them are copied verbatim; with one, every element
 * is re-headered in the two-byte form (its data unchanged) and inter-element padding is dropped.
 */
const editExtension = (
  input: Uint8Array | RtpPacket,
  id: number,
  data: Uint8Array | undefined,
  alloc: PacketAllocator
): Result.Result<Uint8Array, RtpParseError | RtpExtensionError> => {
  if (!Number.isInteger(id) || id < 1 || id > TWO_BYTE_MAX_ID) return extensionError("bad_id", `extension id ${id} is not in 1..255`)
  if (data !== undefined && data.byteLength > TWO_BYTE_MAX_DATA) {
    return extensionError("data_too_long", `extension data of ${data.byteLength} bytes, at most 255`)
  }
  let packet: RtpPacket
  if (input instanceof Uint8Array || (input.extension?._tag === "Raw" && isRfc8285Profile(input.extension.profile))) {
    // bytes, or a packet parsed with its elements skipped: the edit needs every element read
    const parsed = parseRtp(input instanceof Uint8Array ? input : input.bytes)
    if (Result.isFailure(parsed)) return Result.fail(parsed.failure)
    packet = parsed.success
  } else {
    packet = input
  }
  const ext = packet.extension
  if (ext !== undefined && ext._tag === "Raw") {
    return extensionError("foreign_extension", `header extension profile 0x${ext.profile.toString(16)} is not RFC 8285`)
  }
  const tail = tailOf(packet)
  const existing = ext === undefined ? [] : ext.elements
  const currentTwoByte = ext !== undefined && ext._tag === "TwoByte"
  const twoByte = currentTwoByte || (data !== undefined && needsTwoByteForm(id, data.byteLength))
  const chunks: Array<Uint8Array> = []
  let bodyLength = 0
  const push = (chunk: Uint8Array): void => {
    chunks.push(chunk)
    bodyLength += chunk.byteLength
  }
  const header = (elementId: number, length: number): Uint8Array => twoByte ? Uint8Array.of(elementId, length) : Uint8Array.of((elementId << 4) | (length - 1))
  let written = false
  let kept = 0
  if (ext !== undefined && twoByte === currentTwoByte) {
    // same form: copy every other element and the gaps between elements verbatim
    // (the padding before an element goes with it: it is dropped with a removed element)
    let previousEnd = 0
    for (const e of existing) {
      const gap = ext.body.subarray(previousEnd, e.start)
      previousEnd = e.end
      if (e.id !== id) {
        if (gap.byteLength > 0) push(gap)
        push(ext.body.subarray(e.start, e.end))
        kept++
      } else if (data !== undefined && !written) {
        if (gap.byteLength > 0) push(gap)
        push(header(id, data.byteLength))
        push(data)
        written = true
      }
    }
  } else {
    // switching to the two-byte form: re-header every element, data unchanged
    for (const e of existing) {
      if (e.id !== id) {
        push(header(e.id, e.data.byteLength))
        push(e.data)
        kept++
      } else if (data !== undefined && !written) {
        push(header(id, data.byteLength))
        push(data)
        written = true
      }
    }
  }
  if (data !== undefined && !written) {
    push(header(id, data.byteLength))
    push(data)
    written = true
  }
  if (!written && kept === 0) return Result.succeed(assemble(packet, undefined, tail, alloc))
  if (pad4(bodyLength) > MAX_BODY_BYTES) {
    return extensionError("extension_too_large", `extension block of ${bodyLength} bytes exceeds 65535 words`)
  }
  chunks.push(new Uint8Array(pad4(bodyLength) - bodyLength))
  const profile = twoByte
    ? (ext !== undefined && ext._tag === "TwoByte" ? ext.profile : TWO_BYTE_PROFILE)
    : ONE_BYTE_PROFILE
  return Result.succeed(assemble(packet, { profile, body: chunks, bodyLength }, tail, alloc))
}

/**
 * Adds the extension element `id` with `data`, or replaces it (the first element with that id;
 * later duplicates are dropped). Every other element keeps its order and bytes; payload and
 * padding are copied verbatim. The whole block switches to the two-byte form (appbits 0) when
 * the element needs it (`id` > 14, or `data` empty or longer than 16 bytes); a two-byte block
 * stays two-byte (appbits kept). A packet without an extension gets a one-byte block when the
 * element fits. Returns new bytes; the input is not modified.
 */
export const setExtension = (
  packet: Uint8Array | RtpPacket,
  id: number,
  data: Uint8Array,
  alloc: PacketAllocator = pooledAllocator
): Result.Result<Uint8Array, RtpParseError | RtpExtensionError> => {
  if (!(packet instanceof Uint8Array) && Number.isInteger(id) && !needsTwoByteForm(id, data.byteLength)) {
    const appended = appendOneByte(packet, id, data, alloc)
    if (appended !== undefined) return Result.succeed(appended)
  }
  return editExtension(packet, id, data, alloc)
}

/**
 * The common case of `setExtension` in one copy: a packet without an extension, or with a
 * one-byte block that has no element `id`, gets the element appended (elements and the gaps
 * between them verbatim, the block's trailing padding re-made). Same bytes as the general path;
 * undefined when the case does not apply.
 */
const appendOneByte = (packet: RtpPacket, id: number, data: Uint8Array, alloc: PacketAllocator): Uint8Array | undefined => {
  const ext = packet.extension
  let keep: Uint8Array | undefined
  if (ext !== undefined) {
    if (ext._tag !== "OneByte") return undefined
    const elements = ext.elements
    for (let i = 0; i < elements.length; i++) if (elements[i]!.id === id) return undefined
    keep = ext.body.subarray(0, elements.length === 0 ? 0 : elements[elements.length - 1]!.end)
  }
  const kept = keep === undefined ? 0 : keep.byteLength
  const bodyLength = pad4(kept + 1 + data.byteLength)
  const headerLength = RTP_FIXED_HEADER_BYTES + packet.csrcs.length * 4
  const tail = tailOf(packet)
  const out = alloc(headerLength + 4 + bodyLength + tail.byteLength)
  out.set(packet.bytes.subarray(0, headerLength), 0)
  out[0] = out[0]! | 0x10
  out[headerLength] = ONE_BYTE_PROFILE >> 8
  out[headerLength + 1] = ONE_BYTE_PROFILE & 0xff
  out[headerLength + 2] = (bodyLength / 4) >> 8
  out[headerLength + 3] = (bodyLength / 4) & 0xff
  let pos = headerLength + 4
  if (keep !== undefined) {
    out.set(keep, pos)
    pos += kept
  }
  out[pos++] = (id << 4) | (data.byteLength - 1)
  out.set(data, pos)
  pos += data.byteLength
  out.fill(0, pos, headerLength + 4 + bodyLength)
  out.set(tail, headerLength + 4 + bodyLength)
  return out
}

/**
 * Removes every element with `id`; the other elements (and the padding before each) are kept
 * byte-identical, the form is kept. When no element remains, the extension block is dropped and
 * the X bit cleared. Returns new bytes (a copy when there was nothing to remove).
 */
export const removeExtension = (
  packet: Uint8Array | RtpPacket,
  id: number
): Result.Result<Uint8Array, RtpParseError | RtpExtensionError> => editExtension(packet, id, undefined, pooledAllocator)

/**
 * The packet with `payload` instead of its payload: header, CSRCs and extension block copied
 * verbatim, the padding dropped (P bit cleared). Returns new bytes.
 */
export const withPayload = (packet: RtpPacket, payload: Uint8Array, alloc: PacketAllocator = pooledAllocator): Uint8Array => {
  const headerLength = packet.payload.byteOffset - packet.bytes.byteOffset
  const out = alloc(headerLength + payload.byteLength)
  out.set(packet.bytes.subarray(0, headerLength), 0)
  out[0] = out[0]! & ~0x20
  out.set(payload, headerLength)
  return out
}

/**
 * The data of the first element with `id`, or undefined (a view of the packet). For a block
 * parsed with its elements skipped, the elements are read now (undefined if they are malformed).
 */
export const getExtension = (packet: RtpPacket, id: number): Uint8Array | undefined => {
  const ext = packet.extension
  if (ext === undefined) return undefined
  let elements: ReadonlyArray<RtpExtensionElement>
  if (ext._tag !== "Raw") elements = ext.elements
  else if (isRfc8285Profile(ext.profile)) {
    const read = parseElements(ext.body, ext.profile !== ONE_BYTE_PROFILE)
    if (Result.isFailure(read)) return undefined
    elements = read.success
  } else return undefined
  for (const e of elements) if (e.id === id) return e.data
  return undefined
}
