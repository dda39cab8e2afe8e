import { Effect, Result } from "effect"
import { OpusDecoder } from "opus-decoder"
import { endianness } from "node:os"
import {
  carriesNoAudio,
  checkOpusPacket,
  floatToInt16,
  MAX_CONCEALMENT_MS,
  MAX_OPUS_PAYLOAD_BYTES,
  OPUS_RTP_CLOCK_RATE,
  type OpusRtpDecoded,
  type OpusRtpDecoderOptions,
  parseOpusRtp,
  type RtpRejected,
  rtpReject
} from "../../media/opus.ts"
import { SequenceTracker } from "../../media/sequence.ts"
import { PCM_SAMPLE_RATE, PCM_SAMPLES_PER_MS, type PcmChunk } from "../../schemas/audio.ts"

const littleEndianHost = endianness() === "LE"

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
    const parsed = parseOpusRtp(bytes)
    if (Result.isFailure(parsed)) return Result.fail(parsed.failure)
    const packet = parsed.success
    if (this.options.payloadType !== undefined && packet.payloadType !== this.options.payloadType) {
      return rtpReject("wrong_payload_type", `payload type ${packet.payloadType}, expected ${this.options.payloadType}`, packet.sequence)
    }
    if (packet.payload.length > MAX_OPUS_PAYLOAD_BYTES) {
      return rtpReject("opus_decode_error", `${packet.payload.length} payload bytes`, packet.sequence)
    }
    if (!carriesNoAudio(packet)) {
      const problem = checkOpusPacket(packet.payload)
      if (problem !== undefined) return rtpReject("opus_decode_error", problem, packet.sequence)
    }
    if (this.ssrc !== packet.ssrc) this.resetStream(packet.ssrc, packet.timestamp, arrivalMs)
    const verdict = this.tracker.track(packet.sequence)
    if (verdict._tag === "Duplicate" || verdict._tag === "Late") {
      return Result.succeed({ chunk: undefined, concealed: [], verdict, payloadBytes: packet.payload.length })
    }
    const sequence = this.tracker.extended
    const concealed = verdict._tag === "Gap" ? this.conceal(verdict.lost, sequence, packet.timestamp) : []
    if (carriesNoAudio(packet)) {
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
