/**
 * Comparing audio that was sent with audio that arrived: normalised cross-correlation (FFT), decimation
 * (e.g. a 48 kHz WAV against the sink's 16 kHz s16le), and reading a PCM WAV with its format.
 */
import { readFileSync } from "node:fs"
import { fft } from "./tones.ts"

export interface Correlation {
  /** Samples by which `b` lags `a` (b[i + lag] ≈ a[i]); negative when `b` leads. */
  readonly lag: number
  /** Correlation coefficient at `lag` over the overlapping samples, clamped to 0..1 (1: same waveform). */
  readonly peak: number
}

const prefixEnergy = (x: Int16Array): Float64Array => {
  const out = new Float64Array(x.length + 1)
  for (let i = 0; i < x.length; i++) out[i + 1] = out[i]! + x[i]! * x[i]!
  return out
}

/**
 * The lag in [-maxLagSamples, maxLagSamples] where `b` best matches `a`. Each lag's coefficient is normalised
 * by the energy of the overlapping parts only, so a delayed copy scores ~1 however long the delay; lags whose
 * overlap is under half the shorter signal are skipped (a few overlapping samples would match by chance).
 */
export const crossCorrelation = (a: Int16Array, b: Int16Array, maxLagSamples: number): Correlation => {
  let n = 1
  while (n < a.length + b.length) n <<= 1
  const aRe = new Float64Array(n)
  const aIm = new Float64Array(n)
  const bRe = new Float64Array(n)
  const bIm = new Float64Array(n)
  aRe.set(a)
  bRe.set(b)
  fft(aRe, aIm)
  fft(bRe, bIm)
  // r[k] = sum_i a[i] b[i + k] = IFFT(conj(A) B)[k]; the inverse as conj(FFT(conj(X))) / n.
  for (let k = 0; k < n; k++) {
    const re = aRe[k]! * bRe[k]! + aIm[k]! * bIm[k]!
    const im = aRe[k]! * bIm[k]! - aIm[k]! * bRe[k]!
    aRe[k] = re
    aIm[k] = -im
  }
  fft(aRe, aIm)
  const energyA = prefixEnergy(a)
  const energyB = prefixEnergy(b)
  const minOverlap = Math.max(1, Math.floor(Math.min(a.length, b.length) / 2))
  let best: Correlation = { lag: 0, peak: 0 }
  for (let lag = -maxLagSamples; lag <= maxLagSamples; lag++) {
    const first = Math.max(0, -lag)
    const end = Math.min(a.length, b.length - lag)
    if (end - first < minOverlap) continue
    const denominator = Math.sqrt((energyA[end]! - energyA[first]!) * (energyB[end + lag]! - energyB[first + lag]!))
    if (denominator === 0) continue
    const coefficient = aRe[(lag + n) % n]! / n / denominator
    if (coefficient > best.peak) best = { lag, peak: Math.min(1, coefficient) }
  }
  return best
}

/** Low-pass (windowed sinc, 0.45 of the new rate) then keep every `factor`-th sample: 48 kHz -> 16 kHz is factor 3. */
export const decimate = (samples: Int16Array, factor: number, taps = 63): Int16Array => {
  if (!Number.isInteger(factor) || factor < 1) throw new Error(`decimate: factor must be a positive integer, got ${factor}`)
  if (factor === 1) return samples.slice()
  const cutoff = 0.45 / factor
  const half = (taps - 1) / 2
  const kernel = new Float64Array(taps)
  let sum = 0
  for (let t = 0; t < taps; t++) {
    const x = t - half
    const sinc = x === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * x) / (Math.PI * x)
    kernel[t] = sinc * (0.54 - 0.46 * Math.cos((2 * Math.PI * t) / (taps - 1)))
    sum += kernel[t]!
  }
  const out = new Int16Array(Math.floor(samples.length / factor))
  for (let o = 0; o < out.length; o++) {
    const centre = o * factor
    let acc = 0
    for (let t = 0; t < taps; t++) {
      const i = centre + t - half
      if (i >= 0 && i < samples.length) acc += samples[i]! * kernel[t]!
    }
    out[o] = Math.max(-32768, Math.min(32767, Math.round(acc / sum)))
  }
  return out
}

/** Averages interleaved channels to mono. */
export const toMono = (samples: Int16Array, channels: number): Int16Array => {
  if (channels === 1) return samples
  const out = new Int16Array(Math.floor(samples.length / channels))
  for (let i = 0; i < out.length; i++) {
    let acc = 0
    for (let c = 0; c < channels; c++) acc += samples[i * channels + c]!
    out[i] = Math.round(acc / channels)
  }
  return out
}

export interface WavPcm {
  readonly sampleRate: number
  readonly channels: number
  /** Interleaved s16 samples. */
  readonly samples: Int16Array
}

/** A 16-bit PCM WAV's format and samples (throws on anything else). */
export const readWav = (file: string): WavPcm => {
  const bytes = readFileSync(file)
  if (bytes.length < 12 || bytes.toString("ascii", 0, 4) !== "RIFF" || bytes.toString("ascii", 8, 12) !== "WAVE") {
    throw new Error(`${file}: not a RIFF/WAVE file`)
  }
  let format: { sampleRate: number; channels: number } | undefined
  for (let offset = 12; offset + 8 <= bytes.length;) {
    const id = bytes.toString("ascii", offset, offset + 4)
    const size = bytes.readUInt32LE(offset + 4)
    if (id === "fmt ") {
      if (bytes.readUInt16LE(offset + 8) !== 1 || bytes.readUInt16LE(offset + 22) !== 16) throw new Error(`${file}: not 16-bit PCM`)
      format = { channels: bytes.readUInt16LE(offset + 10), sampleRate: bytes.readUInt32LE(offset + 12) }
    } else if (id === "data" && format !== undefined) {
      const data = bytes.subarray(offset + 8, Math.min(bytes.length, offset + 8 + size))
      const samples = new Int16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length - (data.length % 2)))
      return { ...format, samples }
    }
    offset += 8 + size + (size % 2)
  }
  throw new Error(`${file}: no fmt/data chunk`)
}
