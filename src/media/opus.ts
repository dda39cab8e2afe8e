import { Result } from "effect"
import type { PcmChunk, RtpRejectReason } from "../schemas/audio.ts"
import { parseRtp, type RtpPacket, SKIP_EXTENSION_ELEMENTS } from "./rtp.ts"
import type { SequenceVerdict } from "./sequence.ts"

/**
 * Opus over RTP (RFC 7587, RFC 6716): the packet-level helpers of the audio path and the types
 * its decoder (`src/layers/audio/opus-rtp-decoder.ts`, libopus) speaks.
 */

/** Opus' RTP clock rate is always 48 kHz (RFC 7587), whatever the encoded bandwidth. */
export const OPUS_RTP_CLOCK_RATE = 48_000

/** Largest Opus payload the decoder's input buffer takes (opus-decoder: 7680 bytes for 2 channels). */
export const MAX_OPUS_PAYLOAD_BYTES = 7680

/** The most one gap is concealed: one libopus PLC call yields 120 ms (opus-decoder asks for its 120 ms maximum). */
export const MAX_CONCEALMENT_MS = 120

export interface RtpRejected {
  readonly _tag: "RtpRejected"
  readonly reason: RtpRejectReason
  readonly detail: string
  /** The RTP sequence number, when the fixed header was readable. */
  readonly sequence?: number
}

export const rtpReject = (reason: RtpRejectReason, detail: string, sequence?: number): Result.Result<never, RtpRejected> =>
  Result.fail(sequence === undefined ? { _tag: "RtpRejected", reason, detail } : { _tag: "RtpRejected", reason, detail, sequence })

/**
 * An RTP packet on the Opus path: {@link parseRtp} with the header extension's elements skipped
 * (the block is bounds-checked by its length word only: a malformed RFC 8285 element does not cost
 * the audio), any failure as `malformed_rtp`. Pure; the payload is a view; nothing is made on
 * success beyond the packet itself.
 */
export const parseOpusRtp = (bytes: Uint8Array): Result.Result<RtpPacket, RtpRejected> =>
  Result.mapError(parseRtp(bytes, SKIP_EXTENSION_ELEMENTS), (e): RtpRejected =>
    e.sequence === undefined
      ? { _tag: "RtpRejected", reason: "malformed_rtp", detail: e.detail }
      : { _tag: "RtpRejected", reason: "malformed_rtp", detail: e.detail, sequence: e.sequence })

/**
 * The packet carries no audio: its payload is empty after the padding (Chromium's padding-only
 * bandwidth probes: P bit set, repeated timestamp). Such a packet is not an Opus frame (RFC 6716
 * 3.1 needs at least the TOC byte) and is skipped rather than decoded.
 */
export const carriesNoAudio = (packet: RtpPacket): boolean => packet.payload.byteLength === 0

/** Duration of one Opus frame in 48 kHz samples, from the TOC config (RFC 6716 3.1). */
const opusFrameSamples = (config: number): number => {
  if (config < 12) return [480, 960, 1920, 2880][config % 4]! // SILK: 10, 20, 40, 60 ms
  if (config < 16) return [480, 960][config % 2]! // Hybrid: 10, 20 ms
  return [120, 240, 480, 960][config % 4]! // CELT: 2.5, 5, 10, 20 ms
}

/**
 * Cheap structural check of an Opus packet (RFC 6716 3.2) so that garbage is rejected before the
 * decoder sees it: frame count code, code-1 even split, code-2 first length, code-3 frame count
 * and the 120 ms cap.
 */
export const checkOpusPacket = (packet: Uint8Array): string | undefined => {
  if (packet.length === 0) return "empty Opus packet"
  const toc = packet[0]!
  const frameSamples = opusFrameSamples(toc >> 3)
  const code = toc & 0x03
  if (code === 1 && (packet.length - 1) % 2 !== 0) return "code-1 packet with an odd payload"
  if (code === 2) {
    if (packet.length < 2) return "code-2 packet without a frame length"
    const first = packet[1]!
    const size = first < 252 ? first : packet.length >= 3 ? first + packet[2]! * 4 : -1
    const header = first < 252 ? 2 : 3
    if (size < 0 || header + size > packet.length) return "code-2 frame length runs past the end"
  }
  if (code === 3) {
    if (packet.length < 2) return "code-3 packet without a frame count"
    const count = packet[1]! & 0x3f
    if (count === 0) return "code-3 packet with zero frames"
    if (count * frameSamples > 5760) return `code-3 packet of ${count} frames exceeds 120 ms`
  }
  return undefined
}

/** Float samples in [-1, 1] to s16 with rounding and clipping. */
export const floatToInt16 = (input: Float32Array, length: number = input.length): Int16Array => {
  const out = new Int16Array(length)
  for (let i = 0; i < length; i++) {
    const s = input[i]! * 32768
    out[i] = s >= 32767 ? 32767 : s <= -32768 ? -32768 : Math.round(s)
  }
  return out
}

export interface OpusRtpDecoderOptions {
  /** Accept only this payload type (e.g. the consumer's negotiated Opus PT); default any. */
  readonly payloadType?: number
  /** Re-anchor the RTP-timestamp-to-wallclock mapping when it lags arrival by more than this (default 1000 ms). */
  readonly maxMappingLagMs?: number
  /**
   * Fill a sequence gap with libopus packet-loss concealment, up to this many ms (capped at
   * {@link MAX_CONCEALMENT_MS}); default 0: a lost packet is simply absent.
   */
  readonly concealMs?: number
}

/** What one RTP packet gave: a chunk (or none: duplicate, late, no audio) and the sequence verdict. */
export interface OpusRtpDecoded {
  readonly chunk: PcmChunk | undefined
  /** Concealment of the gap before `chunk` (in sequence order, each in a lost packet's place); usually empty. */
  readonly concealed: ReadonlyArray<PcmChunk>
  readonly verdict: SequenceVerdict
  /** Payload bytes of the packet (for `auralink_audio_bytes_total`). */
  readonly payloadBytes: number
}
