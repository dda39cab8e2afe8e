import { Result } from "effect"
import { endianness } from "node:os"
import {
  CHUNK_HEADER_BYTES,
  CHUNK_OFFSET,
  CHUNK_VERSION,
  type ChunkErrorMessage,
  type ChunkRejected,
  type ChunkRejectReason,
  DEFAULT_MAX_CHUNK_BYTES,
  DEFAULT_MAX_FUTURE_SKEW_MS,
  MAX_CHUNK_DURATION_MS,
  MIN_CHUNK_DURATION_MS,
  PCM_BYTES_PER_SAMPLE,
  PCM_SAMPLES_PER_MS,
  type PcmChunk
} from "../../schemas/audio.ts"

const littleEndianHost = endianness() === "LE"

export interface ParseChunkOptions {
  /** Size limit of one message in bytes (default 65536). */
  readonly maxBytes?: number
  /** "Now" for the capture-time check, ms since epoch (default `Date.now()`). */
  readonly nowMs?: number
  /** A capture time later than now + this is `bad_capture_time` (default 60000). */
  readonly maxFutureSkewMs?: number
}

const reject = (reason: ChunkRejectReason, detail: string, sequence?: number): Result.Result<never, ChunkRejected> =>
  Result.fail(sequence === undefined ? { _tag: "ChunkRejected", reason, detail } : { _tag: "ChunkRejected", reason, detail, sequence })

/**
 * An `Int16Array` over s16le bytes: a zero-copy view when the offset is 2-aligned and the host is
 * little-endian (every platform Node ships for), else a copy.
 */
export const int16View = (pcm: Uint8Array): Int16Array => {
  const count = pcm.byteLength >> 1
  if (littleEndianHost && pcm.byteOffset % 2 === 0) return new Int16Array(pcm.buffer, pcm.byteOffset, count)
  const out = new Int16Array(count)
  const view = new DataView(pcm.buffer, pcm.byteOffset, pcm.byteLength)
  for (let i = 0; i < count; i++) out[i] = view.getInt16(i * 2, true)
  return out
}

/**
 * Validates one PCM chunk message (layout in `src/schemas/audio.ts`). Pure; the returned chunk's
 * `pcm` is a view of `bytes` (and `samples` too, when aligned), so `bytes` must not be reused by
 * the caller while the chunk is alive.
 */
export const parseChunk = (bytes: Uint8Array, options: ParseChunkOptions = {}): Result.Result<PcmChunk, ChunkRejected> => {
  const length = bytes.byteLength
  if (length < CHUNK_HEADER_BYTES) return reject("too_short", `${length} bytes, the header alone is ${CHUNK_HEADER_BYTES}`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, length)
  const sequence = view.getUint32(CHUNK_OFFSET.sequence, false)
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_CHUNK_BYTES
  if (length > maxBytes) return reject("too_large", `${length} bytes, the limit is ${maxBytes}`, sequence)
  const version = view.getUint8(CHUNK_OFFSET.version)
  if (version !== CHUNK_VERSION) return reject("bad_version", `version ${version}, expected ${CHUNK_VERSION}`, sequence)
  const sampleBytes = length - CHUNK_HEADER_BYTES
  if (sampleBytes % PCM_BYTES_PER_SAMPLE !== 0) return reject("odd_sample_bytes", `${sampleBytes} sample bytes`, sequence)
  const sampleCount = sampleBytes / PCM_BYTES_PER_SAMPLE
  const durationMs = sampleCount / PCM_SAMPLES_PER_MS
  if (durationMs < MIN_CHUNK_DURATION_MS) {
    return reject("too_short_duration", `${durationMs} ms, the minimum is ${MIN_CHUNK_DURATION_MS}`, sequence)
  }
  if (durationMs > MAX_CHUNK_DURATION_MS) {
    return reject("too_long_duration", `${durationMs} ms, the maximum is ${MAX_CHUNK_DURATION_MS}`, sequence)
  }
  const captureTime = view.getBigUint64(CHUNK_OFFSET.captureTime, false)
  const nowMs = options.nowMs ?? Date.now()
  const maxFuture = nowMs + (options.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS)
  if (captureTime === 0n || captureTime > BigInt(Math.floor(maxFuture))) {
    return reject("bad_capture_time", `capture time ${captureTime} (now ${nowMs})`, sequence)
  }
  const pcm = bytes.subarray(CHUNK_HEADER_BYTES)
  return Result.succeed({ sequence, captureTimeMs: Number(captureTime), durationMs, samples: int16View(pcm), pcm })
}

/** Builds a version-1 chunk message (the client side of the format; tests and the demo use it). */
export const encodeChunk = (chunk: {
  readonly sequence: number
  readonly captureTimeMs: number
  readonly samples: Int16Array
}): Uint8Array => {
  const out = new Uint8Array(CHUNK_HEADER_BYTES + chunk.samples.length * PCM_BYTES_PER_SAMPLE)
  const view = new DataView(out.buffer)
  view.setUint8(CHUNK_OFFSET.version, CHUNK_VERSION)
  view.setUint8(CHUNK_OFFSET.flags, 0)
  view.setUint16(CHUNK_OFFSET.reserved, 0, false)
  view.setUint32(CHUNK_OFFSET.sequence, chunk.sequence >>> 0, false)
  view.setBigUint64(CHUNK_OFFSET.captureTime, BigInt(Math.floor(chunk.captureTimeMs)), false)
  for (let i = 0; i < chunk.samples.length; i++) view.setInt16(CHUNK_HEADER_BYTES + i * 2, chunk.samples[i]!, true)
  return out
}

/** The data-channel error message for a rejected chunk: `{"type":"error","reason":…,"sequence"?:…}`. */
export const chunkErrorMessage = (rejected: Pick<ChunkRejected, "reason" | "sequence">): ChunkErrorMessage =>
  rejected.sequence === undefined
    ? { type: "error", reason: rejected.reason }
    : { type: "error", reason: rejected.reason, sequence: rejected.sequence }

/** {@link chunkErrorMessage} as the JSON text sent on the data channel. */
export const encodeChunkError = (rejected: Pick<ChunkRejected, "reason" | "sequence">): string => JSON.stringify(chunkErrorMessage(rejected))
