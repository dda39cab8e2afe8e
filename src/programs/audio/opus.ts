import { Effect, Result } from "effect"
import { OpusDecoder } from "opus-decoder"
import { endianness } from "node:os"
import { PCM_SAMPLE_RATE, PCM_SAMPLES_PER_MS, type PcmChunk, type RtpRejectReason } from "../../schemas/audio.ts"
import { SequenceTracker, type SequenceVerdict } from "./pcm.ts"

const littleEndianHost = endianness() === "LE"

/** Opus' RTP clock rate is always 48 kHz (RFC 7587), whatever the encoded bandwidth. */
export const OPUS_RTP_CLOCK_RATE = 48_000

/** The fields of an RTP packet the Opus path uses; `payload` is a view of the packet. */
export interface RtpPacket {
  readonly payloadType: number
  readonly marker: boolean
  readonly sequence: number
  readonly timestamp: number
  readonly ssrc: number
  readonly payload: Uint8Array
}

export interface RtpRejected {
  readonly _tag: "RtpRejected"
  readonly reason: RtpRejectReason
  readonly detail: string
  /** The RTP sequence number, when the fixed header was readable. */
  readonly sequence?: number
}

const rtpReject = (reason: RtpRejectReason, detail: string, sequence?: number): Result.Result<never, RtpRejected> =>
  Result.fail(sequence === undefined ? { _tag: "RtpRejected", reason, detail } : { _tag: "RtpRejected", reason, detail, sequence })

/**
 * Parses an RTP packet (RFC 3550 section 5.1) far enough to reach the payload: version 2, CSRC
 * list skipped, header extension (RFC 3550 5.3.1 / RFC 8285, any profile) skipped by its length
 * word, padding removed. Anything that runs past the end is `malformed_rtp`. Pure; the payload is
 * a view.
 */
export const parseRtp = (bytes: Uint8Array): Result.Result<RtpPacket, RtpRejected> => {
  const length = bytes.byteLength
  if (length < 12) return rtpReject("malformed_rtp", `${length} bytes, the fixed header is 12`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, length)
  const b0 = view.getUint8(0)
  const b1 = view.getUint8(1)
  const sequence = view.getUint16(2, false)
  if (b0 >> 6 !== 2) return rtpReject("malformed_rtp", `RTP version ${b0 >> 6}`, sequence)
  const padding = (b0 & 0x20) !== 0
  const extension = (b0 & 0x10) !== 0
  const csrcCount = b0 & 0x0f
  let offset = 12 + csrcCount * 4
  if (offset > length) return rtpReject("malformed_rtp", `${csrcCount} CSRCs run past the end`, sequence)
  if (extension) {
    if (offset + 4 > length) return rtpReject("malformed_rtp", "header extension runs past the end", sequence)
    const words = view.getUint16(offset + 2, false)
    offset += 4 + words * 4
    if (offset > length) return rtpReject("malformed_rtp", `header extension of ${words} words runs past the end`, sequence)
  }
  let end = length
  if (padding) {
    const padLength = view.getUint8(length - 1)
    if (padLength === 0 || offset + padLength > length) {
      return rtpReject("malformed_rtp", `padding of ${padLength} bytes is invalid`, sequence)
    }
    end -= padLength
  }
  return Result.succeed({
    payloadType: b1 & 0x7f,
    marker: (b1 & 0x80) !== 0,
    sequence,
    timestamp: view.getUint32(4, false),
    ssrc: view.getUint32(8, false),
    payload: bytes.subarray(offset, end)
  })
}

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

/** Largest Opus payload the decoder's input buffer takes (opus-decoder: 7680 bytes for 2 channels). */
export const MAX_OPUS_PAYLOAD_BYTES = 7680

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

/** The most one gap is concealed: one libopus PLC call yields 120 ms (opus-decoder asks for its 120 ms maximum). */
export const MAX_CONCEALMENT_MS = 120

/** What one RTP packet gave: a chunk (or none: duplicate, late, no audio) and the sequence verdict. */
export interface OpusRtpDecoded {
  readonly chunk: PcmChunk | undefined
  /** Concealment of the gap before `chunk` (in sequence order, each in a lost packet's place); usually empty. */
  readonly concealed: ReadonlyArray<PcmChunk>
  readonly verdict: SequenceVerdict
  /** Payload bytes of the packet (for `auralink_audio_bytes_total`). */
  readonly payloadBytes: number
}

const toPcmChunk = (sequence: number, captureTimeMs: number, samples: Int16Array): PcmChunk => {
  let pcm: Uint8Array
  if (littleEndianHost) {
    pcm = new Uint8Array(samples.buffer, samples.byteOffset, samples.byteLength)
  } else {
    pcm = new Uint8Array(samples.length * 2)
    const view = new DataView(pcm.buffer)
    for (let i = 0; i < samples.length; i++) view.setInt16(i * 2, samples[i]!, true)
  }
  return { sequence, captureTimeMs, durationMs: samples.length / PCM_SAMPLES_PER_MS, samples, pcm }
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

/**
 * Opus RTP -> 16 kHz mono s16 chunks, one per packet, for one RTP stream (one SSRC; a new SSRC
 * resets the state).
 *
 * - Decoding: libopus (the `opus-decoder` WebAssembly build, bundled in the npm package) with a
 *   16 kHz mono output: libopus downmixes a stereo stream and band-limits to 8 kHz itself (CELT
 *   drops the bands above the output Nyquist, SILK decodes at 16 kHz natively), so no resampler
 *   runs in JavaScript. That was two thirds of the per-packet cost when it decoded 48 kHz stereo
 *   and decimated here (bench/audio-ingest).
 * - `sequence`: the extended RTP sequence number (16-bit sequence plus 65536 per wrap), mod 2^32.
 * - `captureTimeMs`: the RTP timestamp mapped to wallclock, anchored at the arrival time of the
 *   first packet (`anchorArrival + (ts - anchorTs) / 48`). A packet that arrives sooner than its
 *   mapped time moves the anchor to it (the anchor packet had been delayed), and so does one whose
 *   mapped time lags its arrival by more than `maxMappingLagMs` (sender clock drift or a pause the
 *   timestamps do not show). Without RTCP sender reports this is the best estimate of capture time
 *   available: it is the arrival time of the least-delayed packet, carried forward by the media clock.
 * - No audio: a packet whose payload is empty after its padding (Chromium's padding-only bandwidth
 *   probes, P bit set, repeated timestamp) is skipped without using up a `sequence`: the chunk
 *   sequence is the extended RTP sequence minus the packets skipped so, so only loss leaves a gap.
 * - Loss: sequence gaps are counted (the verdict); duplicates and late packets are dropped before
 *   decoding. With `concealMs`, the first lost packets of a gap (up to `concealMs` of audio) are
 *   filled with libopus packet-loss concealment, in their own sequence numbers; the rest of a longer
 *   gap stays a gap. In-band FEC is not available: `opus-decoder` calls libopus with FEC off.
 * - libopus errors: `opus-decoder` prints them with `console.error`; they are caught here and come
 *   back as the `opus_decode_error` reject's detail (the pipeline logs it as JSON), not on stderr.
 */
export class OpusRtpDecoder {
  private tracker = new SequenceTracker(16)
  private ssrc: number | undefined = undefined
  private cycles = 0
  private highest16: number | undefined = undefined
  private anchorArrivalMs = 0
  private anchorTimestamp = 0
  /** Packets without audio skipped in this stream: subtracted from the chunk sequence. */
  private noAudio = 0
  /** 16 kHz samples of the last decoded frame (the unit of concealment). */
  private frameSamples = 0
  private readonly maxLagMs: number
  private readonly concealSamples: number

  private readonly decoder: OpusDecoder<typeof PCM_SAMPLE_RATE>
  private readonly options: OpusRtpDecoderOptions

  private constructor(decoder: OpusDecoder<typeof PCM_SAMPLE_RATE>, options: OpusRtpDecoderOptions) {
    this.decoder = decoder
    this.options = options
    this.maxLagMs = options.maxMappingLagMs ?? 1000
    this.concealSamples = Math.min(MAX_CONCEALMENT_MS, Math.max(0, options.concealMs ?? 0)) * PCM_SAMPLES_PER_MS
  }

  /** Creates a decoder (instantiates the WebAssembly module). */
  static async make(options: OpusRtpDecoderOptions = {}): Promise<OpusRtpDecoder> {
    const decoder = new OpusDecoder({ channels: 1, sampleRate: PCM_SAMPLE_RATE })
    await decoder.ready
    return new OpusRtpDecoder(decoder, options)
  }

  /** Frees the WebAssembly decoder memory. The instance is unusable after. */
  free(): void {
    this.decoder.free()
  }

  /** Extended (32-bit) sequence of an accepted 16-bit sequence. */
  private extend(sequence16: number): number {
    if (this.highest16 !== undefined && sequence16 < this.highest16 && this.highest16 - sequence16 > 0x8000) {
      this.cycles += 0x10000
    }
    this.highest16 = sequence16
    return (this.cycles + sequence16) % 2 ** 32
  }

  private mappedTime(timestamp: number): number {
    const delta = (timestamp - this.anchorTimestamp) | 0 // signed 32-bit difference
    return this.anchorArrivalMs + (delta * 1000) / OPUS_RTP_CLOCK_RATE
  }

  private captureTime(timestamp: number, arrivalMs: number): number {
    const mapped = this.mappedTime(timestamp)
    if (mapped > arrivalMs || mapped < arrivalMs - this.maxLagMs) {
      this.anchorArrivalMs = arrivalMs
      this.anchorTimestamp = timestamp
      return arrivalMs
    }
    return mapped
  }

  private resetStream(ssrc: number, timestamp: number, arrivalMs: number): void {
    this.ssrc = ssrc
    this.cycles = 0
    this.highest16 = undefined
    this.anchorArrivalMs = arrivalMs
    this.anchorTimestamp = timestamp
    this.noAudio = 0
    this.frameSamples = 0
    this.tracker = new SequenceTracker(16)
  }

  /** libopus via opus-decoder, with its `console.error` line taken as the error instead of printed. */
  private decodeQuietly(payload: Uint8Array): { readonly samples: Float32Array | undefined; readonly count: number; readonly error: string | undefined } {
    let printed: string | undefined = undefined
    const print = console.error
    console.error = (...args: ReadonlyArray<unknown>) => {
      printed ??= args.map(String).join(" ")
    }
    try {
      const decoded = this.decoder.decodeFrame(payload)
      const error = decoded.errors[0]?.message ?? printed
      return { samples: decoded.channelData[0], count: decoded.samplesDecoded, error }
    } finally {
      console.error = print
    }
  }

  /** Concealment for the first lost packets of a gap of `lost` before the packet of `sequence` (extended). */
  private conceal(lost: number, sequence: number, timestamp: number): ReadonlyArray<PcmChunk> {
    const frame = this.frameSamples
    if (this.concealSamples === 0 || frame === 0) return []
    const frames = Math.min(lost, Math.floor(this.concealSamples / frame))
    if (frames === 0) return []
    const plc = this.decodeQuietly(new Uint8Array(0))
    if (plc.samples === undefined || plc.error !== undefined) return []
    const chunks: Array<PcmChunk> = []
    const first = sequence - lost
    for (let i = 0; i < frames && (i + 1) * frame <= plc.count; i++) {
      const samples = floatToInt16(plc.samples.subarray(i * frame, (i + 1) * frame))
      // The lost packet's place on the media clock: this packet's timestamp minus the frames between.
      const ts = (timestamp - (lost - i) * frame * (OPUS_RTP_CLOCK_RATE / PCM_SAMPLE_RATE)) >>> 0
      chunks.push(toPcmChunk((first + i - this.noAudio) >>> 0, this.mappedTime(ts), samples))
    }
    return chunks
  }

  /** Counters of the current stream. */
  get stats(): { readonly received: number; readonly lost: number; readonly duplicates: number; readonly late: number } {
    const { received, lost, duplicates, late } = this.tracker
    return { received, lost, duplicates, late }
  }

  /**
   * Depacketizes and decodes one RTP packet that arrived at `arrivalMs` (ms since epoch).
   * Fails with `malformed_rtp`, `wrong_payload_type` or `opus_decode_error`.
   */
  decode(bytes: Uint8Array, arrivalMs: number = Date.now()): Result.Result<OpusRtpDecoded, RtpRejected> {
    const parsed = parseRtp(bytes)
    if (Result.isFailure(parsed)) return Result.fail(parsed.failure)
    const packet = parsed.success
    if (this.options.payloadType !== undefined && packet.payloadType !== this.options.payloadType) {
      return rtpReject("wrong_payload_type", `payload type ${packet.payloadType}, expected ${this.options.payloadType}`, packet.sequence)
    }
    if (packet.payload.length > MAX_OPUS_PAYLOAD_BYTES) {
      return rtpReject("opus_decode_error", `${packet.payload.length} payload bytes`, packet.sequence)
    }
    if (packet.payload.length > 0) {
      const problem = checkOpusPacket(packet.payload)
      if (problem !== undefined) return rtpReject("opus_decode_error", problem, packet.sequence)
    }
    if (this.ssrc !== packet.ssrc) this.resetStream(packet.ssrc, packet.timestamp, arrivalMs)
    const verdict = this.tracker.track(packet.sequence)
    if (verdict._tag === "Duplicate" || verdict._tag === "Late") {
      return Result.succeed({ chunk: undefined, concealed: [], verdict, payloadBytes: packet.payload.length })
    }
    const sequence = this.extend(packet.sequence)
    const concealed = verdict._tag === "Gap" ? this.conceal(verdict.lost, sequence, packet.timestamp) : []
    if (packet.payload.length === 0) {
      // No audio (padding only): skipped without leaving a hole in the chunk sequence.
      this.noAudio++
      return Result.succeed({ chunk: undefined, concealed, verdict, payloadBytes: 0 })
    }
    const captureTimeMs = this.captureTime(packet.timestamp, arrivalMs)
    const decoded = this.decodeQuietly(packet.payload)
    if (decoded.error !== undefined || decoded.count === 0 || decoded.samples === undefined) {
      return rtpReject("opus_decode_error", decoded.error ?? "no samples decoded", packet.sequence)
    }
    this.frameSamples = decoded.count
    const samples = floatToInt16(decoded.samples, decoded.count)
    const chunk = toPcmChunk((sequence - this.noAudio) >>> 0, captureTimeMs, samples)
    return Result.succeed({ chunk, concealed, verdict, payloadBytes: packet.payload.length })
  }
}

/** {@link OpusRtpDecoder.make} as a scoped Effect: the decoder is freed when the scope closes. */
export const makeOpusRtpDecoder = (options: OpusRtpDecoderOptions = {}) =>
  Effect.acquireRelease(
    Effect.promise(() => OpusRtpDecoder.make(options)),
    (decoder) => Effect.sync(() => decoder.free())
  )
