import { Schema } from "effect"
import { Transcript } from "./asr.ts"

/**
 * Audio chunk formats shared by the two ingest paths (PCM over a data channel, Opus RTP).
 *
 * ## PCM-over-data-channel chunk, version 1
 *
 * One data-channel message (binary, any PPID) carries one chunk: a fixed 16-byte header, then
 * the samples. Multi-byte header fields are big-endian (network order); samples are
 * little-endian (s16le, as WebAudio / WAV produce them).
 *
 * ```
 *  offset  size  field
 *  0       1     version       u8      = 1
 *  1       1     flags         u8      = 0 (reserved; ignored by version-1 receivers)
 *  2       2     reserved      u16     = 0 (ignored)
 *  4       4     sequence      u32 BE  per-session counter, +1 per chunk, wraps at 2^32
 *  8       8     captureTime   u64 BE  ms since the Unix epoch of the chunk's first sample
 *  16      2*n   samples       s16le   n samples, 16 kHz, mono
 * ```
 *
 * A chunk is rejected (dropped, counted by reason, answered with an error message) when:
 * - `too_short`: fewer than 16 bytes (no complete header);
 * - `too_large`: more than the size limit (default {@link DEFAULT_MAX_CHUNK_BYTES});
 * - `bad_version`: version is not 1;
 * - `odd_sample_bytes`: the sample section has an odd number of bytes;
 * - `too_short_duration`: under 10 ms of audio (160 samples);
 * - `too_long_duration`: over 1000 ms of audio (16000 samples);
 * - `bad_capture_time`: capture time 0, or further in the future than the allowed clock skew.
 *
 * A reject is answered on the data channel with a small JSON text message:
 * `{"type":"error","reason":"<reason>","sequence":<n>}` (`sequence` present when the header
 * could be read, i.e. for every reason but `too_short`).
 *
 * A gap in the sequence counts as loss (`auralink_audio_loss_total`); a repeated or late
 * sequence is dropped and counted (`auralink_audio_chunks_dropped_total{reason}`).
 */

/** Bytes in the fixed chunk header. */
export const CHUNK_HEADER_BYTES = 16
/** The only chunk layout version this server reads. */
export const CHUNK_VERSION = 1
/** Byte offsets of the header fields. */
export const CHUNK_OFFSET = { version: 0, flags: 1, reserved: 2, sequence: 4, captureTime: 8, samples: 16 } as const
/** PCM format of every chunk, both paths: 16 kHz, mono, signed 16-bit little-endian. */
export const PCM_SAMPLE_RATE = 16_000
export const PCM_CHANNELS = 1
export const PCM_BYTES_PER_SAMPLE = 2
/** Samples per millisecond at {@link PCM_SAMPLE_RATE}. */
export const PCM_SAMPLES_PER_MS = PCM_SAMPLE_RATE / 1000
/** Duration bounds of one chunk, in ms (inclusive). */
export const MIN_CHUNK_DURATION_MS = 10
export const MAX_CHUNK_DURATION_MS = 1000
/**
 * Default size limit of one chunk message: room for 1000 ms (16 + 32000 bytes) with margin,
 * well under mediasoup's default SCTP max message size (262144).
 */
export const DEFAULT_MAX_CHUNK_BYTES = 65_536
/** Default allowed clock skew: a capture time later than now + this is rejected. */
export const DEFAULT_MAX_FUTURE_SKEW_MS = 60_000

/** Why a chunk was rejected (the `reason` label of `auralink_audio_chunk_rejects_total`). */
export const chunkRejectReasons = [
  "too_short",
  "bad_version",
  "odd_sample_bytes",
  "too_short_duration",
  "too_long_duration",
  "too_large",
  "bad_capture_time"
] as const
export type ChunkRejectReason = typeof chunkRejectReasons[number]

/** Why an RTP packet was rejected on the Opus path. */
export const rtpRejectReasons = ["malformed_rtp", "wrong_payload_type", "opus_decode_error"] as const
export type RtpRejectReason = typeof rtpRejectReasons[number]

/** The ingest path a chunk came in on (the `path` label of the audio metrics). */
export const audioPaths = ["datachannel", "rtp"] as const
export type AudioPath = typeof audioPaths[number]

/**
 * One validated chunk of 16 kHz mono s16le audio, from either path.
 *
 * `pcm` is a view of the sample bytes (s16le, for forwarding as-is to the ASR gateway or a WAV
 * file); `samples` is the same data as an `Int16Array` (a view when alignment and host byte order
 * allow, else a copy).
 */
export interface PcmChunk {
  /** Per-session sequence number (data channel: the header's u32; RTP: the extended RTP sequence). */
  readonly sequence: number
  /** Capture time of the first sample, ms since the Unix epoch. */
  readonly captureTimeMs: number
  /** Duration in ms (samples / 16). */
  readonly durationMs: number
  readonly samples: Int16Array
  readonly pcm: Uint8Array
}

/** A rejected chunk: the reason, the sequence when the header was readable, and a human detail. */
export interface ChunkRejected {
  readonly _tag: "ChunkRejected"
  readonly reason: ChunkRejectReason
  readonly sequence?: number
  readonly detail: string
}

/** The JSON error message sent back on the data channel for a rejected chunk. */
export interface ChunkErrorMessage {
  readonly type: "error"
  readonly reason: string
  readonly sequence?: number
}

/**
 * The server's data channel to the client (SCTP label {@link EVENTS_CHANNEL_LABEL}, one JSON text
 * message each): a rejected chunk's error (`ChunkErrorMessage`), every transcript of the
 * session, a `session_error` when the session fails because a producer's audio pipeline did, and
 * `going_away` when the server shuts down. Opened with `POST /api/webrtc/:sessionId/transports/:transportId/events-channel`.
 */
export const EVENTS_CHANNEL_LABEL = "auralink-events"
export const EVENTS_CHANNEL_PROTOCOL = "json"

export const ServerEvent = Schema.Union([
  Schema.Struct({ type: Schema.Literal("error"), reason: Schema.String, sequence: Schema.optionalKey(Schema.Number) }),
  Schema.Struct({ type: Schema.Literal("transcript"), ...Transcript.fields }),
  /** A producer's audio pipeline failed beyond its restarts: the session goes to `error` with `detail`. */
  Schema.Struct({ type: Schema.Literal("session_error"), reason: Schema.Literal("audio_pipeline_failed"), producerId: Schema.String, detail: Schema.String }),
  // The server is shutting down: the session ends next (reason "shutdown"); reconnect elsewhere.
  Schema.Struct({ type: Schema.Literal("going_away"), reason: Schema.String })
])
export type ServerEvent = typeof ServerEvent.Type
