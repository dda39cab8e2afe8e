/**
 * 48 kHz -> 16 kHz decimation by 3 with an anti-aliasing low-pass: a Kaiser-windowed sinc FIR
 * evaluated polyphase-style (only every third output of the filter is computed), streaming across
 * blocks (the filter history carries over, so block boundaries add no clicks).
 *
 * Default design: 127 taps, cutoff 7.2 kHz (-6 dB), Kaiser beta 8 (~80 dB stopband): flat to
 * ~6.2 kHz, stopband from ~8.2 kHz (the new Nyquist is 8 kHz), so what would fold back is far
 * down; group delay 63 input samples (1.3 ms); 127 multiply-adds per output sample.
 */

/** Zeroth-order modified Bessel function of the first kind (series), for the Kaiser window. */
const besselI0 = (x: number): number => {
  let sum = 1
  let term = 1
  const q = (x / 2) ** 2
  for (let k = 1; k < 50; k++) {
    term *= q / (k * k)
    sum += term
    if (term < sum * 1e-12) break
  }
  return sum
}

/** Kaiser-windowed sinc low-pass taps (odd `taps` for a symmetric, integer-delay filter), unity DC gain. */
export const designLowPass = (taps: number, cutoffHz: number, sampleRate: number, beta: number): Float32Array => {
  const h = new Float64Array(taps)
  const fc = cutoffHz / sampleRate
  const mid = (taps - 1) / 2
  const i0Beta = besselI0(beta)
  let sum = 0
  for (let n = 0; n < taps; n++) {
    const t = n - mid
    const sinc = t === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * t) / (Math.PI * t)
    const r = mid === 0 ? 0 : t / mid
    const window = besselI0(beta * Math.sqrt(Math.max(0, 1 - r * r))) / i0Beta
    h[n] = sinc * window
    sum += h[n]!
  }
  const out = new Float32Array(taps)
  for (let n = 0; n < taps; n++) out[n] = h[n]! / sum
  return out
}

export interface DecimatorOptions {
  readonly factor?: number
  readonly taps?: number
  readonly cutoffHz?: number
  readonly inputRate?: number
  readonly beta?: number
}

/**
 * Streaming FIR decimator (default 48 kHz -> 16 kHz). `process` takes any block length and
 * returns the outputs it completes; state (history and phase) carries over between calls.
 */
export class Decimator {
  readonly factor: number
  private readonly h: Float32Array
  /** History (taps - 1 samples) followed by the current block. */
  private work: Float32Array
  /** Index in the next block of the input sample the next output is aligned with. */
  private phase = 0

  constructor(options: DecimatorOptions = {}) {
    this.factor = options.factor ?? 3
    const inputRate = options.inputRate ?? 48_000
    this.h = designLowPass(options.taps ?? 127, options.cutoffHz ?? 7_200, inputRate, options.beta ?? 8)
    this.work = new Float32Array(this.h.length - 1 + 960)
  }

  /** Resets the filter history (e.g. after a long gap). */
  reset(): void {
    this.work.fill(0)
    this.phase = 0
  }

  /** Filters and decimates one block of input samples. */
  process(input: Float32Array): Float32Array {
    const h = this.h
    const taps = h.length
    const history = taps - 1
    if (this.work.length < history + input.length) {
      const grown = new Float32Array(history + input.length)
      grown.set(this.work.subarray(0, history))
      this.work = grown
    }
    const work = this.work
    work.set(input, history)
    const outCount = input.length > this.phase ? Math.ceil((input.length - this.phase) / this.factor) : 0
    const out = new Float32Array(outCount)
    let i = this.phase
    for (let o = 0; o < outCount; o++, i += this.factor) {
      // y[i] = sum_k h[k] * x[i - k]; x[i - k] lives at work[history + i - k].
      const end = history + i
      let acc = 0
      for (let k = 0; k < taps; k++) acc += h[k]! * work[end - k]!
      out[o] = acc
    }
    this.phase = i - input.length
    // Keep the last `history` samples for the next block.
    work.copyWithin(0, input.length, input.length + history)
    return out
  }
}

/** Float samples in [-1, 1] to s16 with rounding and clipping. */
export const floatToInt16 = (input: Float32Array): Int16Array => {
  const out = new Int16Array(input.length)
  for (let i = 0; i < input.length; i++) {
    const s = input[i]! * 32768
    out[i] = s >= 32767 ? 32767 : s <= -32768 ? -32768 : Math.round(s)
  }
  return out
}

/** Averages the channels of planar audio into one (a copy; a single channel is returned as-is). */
export const downmix = (channels: ReadonlyArray<Float32Array>, length: number): Float32Array => {
  if (channels.length === 1) return channels[0]!.subarray(0, length)
  const out = new Float32Array(length)
  const scale = 1 / channels.length
  for (const channel of channels) for (let i = 0; i < length; i++) out[i]! += channel[i]! * scale
  return out
}
