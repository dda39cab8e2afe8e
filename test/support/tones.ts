/**
 * Tone-sequence audio for the audio-path tests: generate a sequence of pure tones (as PCM or a
 * WAV file), measure the dominant frequency of a window (Hann window, zero-padded FFT, parabolic
 * peak interpolation), and check that received audio follows the sequence, in order.
 */

/** The default test sequence: 5 tones of 400 ms. */
export const DEFAULT_TONES: ReadonlyArray<number> = [440, 660, 880, 550, 330]
export const DEFAULT_TONE_MS = 400

export interface ToneOptions {
  readonly tones?: ReadonlyArray<number>
  readonly toneMs?: number
  readonly sampleRate?: number
  /** Peak amplitude as a fraction of full scale (default 0.5). */
  readonly amplitude?: number
  /** Fade in/out per tone, ms (default 5), so tone boundaries do not click. */
  readonly fadeMs?: number
}

/** A tone sequence as float samples in [-1, 1] (phase-continuous across tones). */
export const toneSequenceFloat = (options: ToneOptions = {}): Float32Array => {
  const tones = options.tones ?? DEFAULT_TONES
  const sampleRate = options.sampleRate ?? 16_000
  const perTone = Math.round(((options.toneMs ?? DEFAULT_TONE_MS) * sampleRate) / 1000)
  const fade = Math.round(((options.fadeMs ?? 5) * sampleRate) / 1000)
  const amplitude = options.amplitude ?? 0.5
  const out = new Float32Array(perTone * tones.length)
  let phase = 0
  tones.forEach((f, t) => {
    for (let i = 0; i < perTone; i++) {
      const env = Math.min(1, i / Math.max(1, fade), (perTone - 1 - i) / Math.max(1, fade))
      out[t * perTone + i] = amplitude * env * Math.sin(phase)
      phase += (2 * Math.PI * f) / sampleRate
    }
  })
  return out
}

/** A tone sequence as s16 samples. */
export const toneSequence = (options: ToneOptions = {}): Int16Array => {
  const float = toneSequenceFloat(options)
  const out = new Int16Array(float.length)
  for (let i = 0; i < float.length; i++) out[i] = Math.round(float[i]! * 32767)
  return out
}

/** A pure sine as float samples. */
export const sine = (frequency: number, sampleRate: number, count: number, amplitude = 0.5): Float32Array => {
  const out = new Float32Array(count)
  for (let i = 0; i < count; i++) out[i] = amplitude * Math.sin((2 * Math.PI * frequency * i) / sampleRate)
  return out
}

/** A 16-bit PCM WAV file (RIFF/WAVE, format 1) of interleaved samples. */
export const wavFile = (samples: Int16Array, sampleRate: number, channels = 1): Buffer => {
  const dataBytes = samples.length * 2
  const out = Buffer.alloc(44 + dataBytes)
  out.write("RIFF", 0, "ascii")
  out.writeUInt32LE(36 + dataBytes, 4)
  out.write("WAVE", 8, "ascii")
  out.write("fmt ", 12, "ascii")
  out.writeUInt32LE(16, 16)
  out.writeUInt16LE(1, 20)
  out.writeUInt16LE(channels, 22)
  out.writeUInt32LE(sampleRate, 24)
  out.writeUInt32LE(sampleRate * channels * 2, 28)
  out.writeUInt16LE(channels * 2, 32)
  out.writeUInt16LE(16, 34)
  out.write("data", 36, "ascii")
  out.writeUInt32LE(dataBytes, 40)
  for (let i = 0; i < samples.length; i++) out.writeInt16LE(samples[i]!, 44 + i * 2)
  return out
}

/** In-place iterative radix-2 FFT (length a power of two). */
export const fft = (re: Float64Array, im: Float64Array): void => {
  const n = re.length
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1
    for (; j & bit; bit >>= 1) j ^= bit
    j ^= bit
    if (i < j) {
      ;[re[i], re[j]] = [re[j]!, re[i]!]
      ;[im[i], im[j]] = [im[j]!, im[i]!]
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const angle = (-2 * Math.PI) / len
    const wr = Math.cos(angle)
    const wi = Math.sin(angle)
    for (let i = 0; i < n; i += len) {
      let cr = 1
      let ci = 0
      for (let k = 0; k < len / 2; k++) {
        const a = i + k
        const b = a + len / 2
        const tr = re[b]! * cr - im[b]! * ci
        const ti = re[b]! * ci + im[b]! * cr
        re[b] = re[a]! - tr
        im[b] = im[a]! - ti
        re[a] = re[a]! + tr
        im[a] = im[a]! + ti
        const nr = cr * wr - ci * wi
        ci = cr * wi + ci * wr
        cr = nr
      }
    }
  }
}

const toFloat = (samples: ArrayLike<number>): Float64Array => {
  const scale = samples instanceof Int16Array ? 1 / 32768 : 1
  const out = new Float64Array(samples.length)
  for (let i = 0; i < samples.length; i++) out[i] = samples[i]! * scale
  return out
}

export interface Spectrum {
  /** Frequency of the strongest peak (parabolic interpolation on log magnitude), Hz. */
  readonly frequency: number
  /** RMS of the window (same scale as the input, Int16 normalized to [-1, 1]). */
  readonly rms: number
}

/** Dominant frequency of `samples` (Hann window, zero-padded to >= 8192 points). */
export const analyze = (samples: ArrayLike<number>, sampleRate: number): Spectrum => {
  const x = toFloat(samples)
  let n = 8192
  while (n < x.length) n <<= 1
  const re = new Float64Array(n)
  const im = new Float64Array(n)
  let energy = 0
  for (let i = 0; i < x.length; i++) {
    energy += x[i]! * x[i]!
    re[i] = x[i]! * (0.5 - 0.5 * Math.cos((2 * Math.PI * i) / Math.max(1, x.length - 1)))
  }
  fft(re, im)
  let best = 1
  let bestMag = -1
  for (let k = 1; k < n / 2; k++) {
    const mag = re[k]! * re[k]! + im[k]! * im[k]!
    if (mag > bestMag) {
      bestMag = mag
      best = k
    }
  }
  const mag = (k: number) => Math.log(Math.max(1e-30, re[k]! * re[k]! + im[k]! * im[k]!))
  const [a, b, c] = [mag(best - 1), mag(best), mag(Math.min(n / 2 - 1, best + 1))]
  const denom = a - 2 * b + c
  const offset = denom === 0 ? 0 : (0.5 * (a - c)) / denom
  return { frequency: ((best + offset) * sampleRate) / n, rms: Math.sqrt(energy / Math.max(1, x.length)) }
}

/** Dominant frequency of `samples` in Hz. */
export const dominantFrequency = (samples: ArrayLike<number>, sampleRate: number): number => analyze(samples, sampleRate).frequency

/** Power of a single frequency (Goertzel), for attenuation measurements; returns RMS amplitude. */
export const toneAmplitude = (samples: ArrayLike<number>, frequency: number, sampleRate: number): number => {
  const x = toFloat(samples)
  const coeff = 2 * Math.cos((2 * Math.PI * frequency) / sampleRate)
  let s1 = 0
  let s2 = 0
  for (let i = 0; i < x.length; i++) {
    const s = x[i]! + coeff * s1 - s2
    s2 = s1
    s1 = s
  }
  const power = s1 * s1 + s2 * s2 - coeff * s1 * s2
  return (Math.sqrt(Math.max(0, power)) * 2) / x.length / Math.SQRT2
}

/** Root mean square of samples (Int16 normalized to [-1, 1]). */
export const rms = (samples: ArrayLike<number>): number => {
  const x = toFloat(samples)
  let e = 0
  for (let i = 0; i < x.length; i++) e += x[i]! * x[i]!
  return Math.sqrt(e / Math.max(1, x.length))
}

export interface WindowReading {
  readonly startMs: number
  readonly frequency: number
  readonly rms: number
}

/** Dominant frequency per window (`windowMs` long, every `hopMs`). */
export const frequencyTrack = (
  samples: ArrayLike<number>,
  sampleRate: number,
  windowMs = 100,
  hopMs = 50
): ReadonlyArray<WindowReading> => {
  const win = Math.round((windowMs * sampleRate) / 1000)
  const hop = Math.round((hopMs * sampleRate) / 1000)
  const out: Array<WindowReading> = []
  const view = Array.prototype.slice
  for (let start = 0; start + win <= samples.length; start += hop) {
    const window = samples instanceof Int16Array || samples instanceof Float32Array
      ? samples.subarray(start, start + win)
      : view.call(samples, start, start + win)
    const { frequency, rms } = analyze(window, sampleRate)
    out.push({ startMs: (start * 1000) / sampleRate, frequency, rms })
  }
  return out
}

export interface ToneCheck {
  readonly ok: boolean
  /** The tones recognized, in order (consecutive windows within tolerance of one tone collapse to one). */
  readonly observed: ReadonlyArray<number>
  readonly track: ReadonlyArray<WindowReading>
  readonly reason?: string
}

export interface ToneCheckOptions {
  readonly tones?: ReadonlyArray<number>
  /** Relative tolerance (default 0.02). */
  readonly tolerance?: number
  readonly windowMs?: number
  readonly hopMs?: number
  /** Windows quieter than this RMS are silence and ignored (default 0.01). */
  readonly minRms?: number
  /** A tone must hold for this many consecutive windows to count (default 2). */
  readonly minWindows?: number
}

/**
 * Checks that `samples` follow the tone sequence: each window's dominant frequency is matched to
 * the nearest expected tone within `tolerance`; runs of at least `minWindows` matching windows
 * form the observed sequence, which must equal the expected one exactly (every tone, in order, no
 * extra tone). Windows that straddle a tone boundary (no match) and silence are ignored.
 */
export const checkToneSequence = (samples: ArrayLike<number>, sampleRate: number, options: ToneCheckOptions = {}): ToneCheck => {
  const tones = options.tones ?? DEFAULT_TONES
  const tolerance = options.tolerance ?? 0.02
  const track = frequencyTrack(samples, sampleRate, options.windowMs ?? 100, options.hopMs ?? 50)
  const minRms = options.minRms ?? 0.01
  const minWindows = options.minWindows ?? 2
  const observed: Array<number> = []
  let current: number | undefined = undefined
  let run = 0
  const flush = () => {
    if (current !== undefined && run >= minWindows && observed[observed.length - 1] !== current) observed.push(current)
  }
  for (const reading of track) {
    const match = reading.rms < minRms
      ? undefined
      : tones.find((tone) => Math.abs(reading.frequency - tone) <= tone * tolerance)
    if (match === current) {
      run++
      continue
    }
    flush()
    current = match
    run = 1
  }
  flush()
  const ok = observed.length === tones.length && observed.every((tone, i) => tone === tones[i])
  return ok ? { ok, observed, track } : { ok, observed, track, reason: `expected ${tones.join(",")}, observed ${observed.join(",")}` }
}

/** Concatenates Int16 sample arrays. */
export const concatSamples = (parts: ReadonlyArray<Int16Array>): Int16Array => {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}
