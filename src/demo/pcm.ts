/**
 * Browser-side PCM helpers for the demo's data-channel path (no DOM needed, so Node can test
 * them): a streaming windowed-sinc downsampler (any input rate -> 16 kHz) and the chunker that
 * frames 16 kHz s16le samples in the version-1 chunk layout of `src/schemas/audio.ts`.
 */
import { CHUNK_HEADER_BYTES, CHUNK_OFFSET, CHUNK_VERSION, PCM_SAMPLE_RATE, PCM_SAMPLES_PER_MS } from "../schemas/audio.ts"

/**
 * Streaming low-pass + resample from `inRate` to `outRate` (windowed sinc, Blackman window,
 * cutoff at 90 % of the output Nyquist). Keeps `half` input samples of history between calls,
 * so consecutive blocks join without clicks. Delay: `half / inRate` seconds.
 */
export class Downsampler {
  readonly inRate: number
  readonly outRate: number
  readonly half: number
  private buffer: Float32Array
  /** Position of the next output sample, in input samples from `buffer[0]`. */
  private pos: number
  private readonly step: number
  private readonly fc: number

  constructor(inRate: number, outRate = PCM_SAMPLE_RATE, half = 32) {
    this.inRate = inRate
    this.outRate = outRate
    this.half = half
    this.step = inRate / outRate
    // Normalized cutoff (cycles per input sample); never above the input Nyquist.
    this.fc = Math.min(0.5, (0.45 * outRate) / inRate)
    this.buffer = new Float32Array(half)
    this.pos = half
  }

  /** The delay the filter adds, ms. */
  get delayMs(): number {
    return (this.half * 1000) / this.inRate
  }

  private kernel(d: number): number {
    const a = Math.abs(d)
    if (a >= this.half) return 0
    const x = 2 * this.fc * d
    const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x)
    const w = 0.42 + 0.5 * Math.cos((Math.PI * d) / this.half) + 0.08 * Math.cos((2 * Math.PI * d) / this.half)
    return 2 * this.fc * sinc * w
  }

  /** Feeds input samples in [-1, 1]; returns the output samples now complete. */
  push(input: Float32Array): Float32Array {
    const joined = new Float32Array(this.buffer.length + input.length)
    joined.set(this.buffer)
    joined.set(input, this.buffer.length)
    const out: Array<number> = []
    while (this.pos + this.half < joined.length) {
      const center = Math.floor(this.pos)
      let acc = 0
      for (let i = center - this.half + 1; i <= center + this.half; i++) acc += joined[i]! * this.kernel(this.pos - i)
      out.push(acc)
      this.pos += this.step
    }
    // Keep what the next outputs still need (their left half of the window).
    const keepFrom = Math.max(0, Math.floor(this.pos) - this.half)
    this.buffer = joined.slice(keepFrom)
    this.pos -= keepFrom
    return Float32Array.from(out)
  }
}

/** Float [-1, 1] -> s16 with clipping. */
export const toInt16 = (samples: Float32Array): Int16Array => {
  const out = new Int16Array(samples.length)
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]!))
    out[i] = Math.round(s < 0 ? s * 32768 : s * 32767)
  }
  return out
}

/** One version-1 chunk: the 16-byte header (big-endian) then the samples as s16le. */
export const encodeChunk = (sequence: number, captureTimeMs: number, samples: Int16Array): ArrayBuffer => {
  const buffer = new ArrayBuffer(CHUNK_HEADER_BYTES + samples.length * 2)
  const view = new DataView(buffer)
  view.setUint8(CHUNK_OFFSET.version, CHUNK_VERSION)
  view.setUint8(CHUNK_OFFSET.flags, 0)
  view.setUint16(CHUNK_OFFSET.reserved, 0)
  view.setUint32(CHUNK_OFFSET.sequence, sequence >>> 0)
  view.setBigUint64(CHUNK_OFFSET.captureTime, BigInt(Math.round(captureTimeMs)))
  for (let i = 0; i < samples.length; i++) view.setInt16(CHUNK_OFFSET.samples + i * 2, samples[i]!, true)
  return buffer
}

export interface Chunk {
  readonly sequence: number
  readonly captureTimeMs: number
  readonly durationMs: number
  readonly bytes: ArrayBuffer
}

/**
 * Collects 16 kHz samples and cuts them into chunks of `chunkMs` (20..100 ms in the demo), each
 * stamped with the next sequence number (from 0, wrapping at 2^32) and the capture time of its
 * first sample (`now()` minus the audio still in flight: the chunk itself and `delayMs`).
 */
export class Chunker {
  private pending: Array<Int16Array> = []
  private pendingSamples = 0
  private sequence = 0
  readonly chunkMs: number
  readonly now: () => number
  readonly delayMs: number

  constructor(chunkMs: number, now: () => number = Date.now, delayMs = 0) {
    this.chunkMs = chunkMs
    this.now = now
    this.delayMs = delayMs
  }

  get samplesPerChunk(): number {
    return Math.round(this.chunkMs * PCM_SAMPLES_PER_MS)
  }

  push(samples: Int16Array): Array<Chunk> {
    this.pending.push(samples)
    this.pendingSamples += samples.length
    const out: Array<Chunk> = []
    const size = this.samplesPerChunk
    while (this.pendingSamples >= size) {
      const all = new Int16Array(this.pendingSamples)
      let offset = 0
      for (const part of this.pending) {
        all.set(part, offset)
        offset += part.length
      }
      const chunk = all.slice(0, size)
      const rest = all.slice(size)
      this.pending = rest.length > 0 ? [rest] : []
      this.pendingSamples = rest.length
      // The chunk's last sample is (rest + delay) old; its first one chunkMs before that.
      const captureTimeMs = this.now() - this.delayMs - rest.length / PCM_SAMPLES_PER_MS - this.chunkMs
      const sequence = this.sequence
      this.sequence = (this.sequence + 1) >>> 0
      out.push({ sequence, captureTimeMs, durationMs: this.chunkMs, bytes: encodeChunk(sequence, captureTimeMs, chunk) })
    }
    return out
  }
}
