import { Schema } from "effect"

/** The sink audio format: 16 kHz, mono, signed 16-bit little-endian PCM (32 bytes per millisecond). */
export const SINK_SAMPLE_RATE = 16_000
export const SINK_BYTES_PER_MS = (SINK_SAMPLE_RATE * 2) / 1000

/** One validated chunk of a producer's audio on its way to the ASR gateway or the recording sink. */
export interface SinkAudioChunk {
  /**
   * Per producer, from the audio path (PCM: the client's chunk sequence; Opus: the extended RTP
   * sequence); the gateway de-duplicates by (session, producer, sequence). See proto/asr.proto.
   */
  readonly sequence: number
  /** Capture time of the first sample, milliseconds since the Unix epoch (PCM: the client's; Opus: from arrival). */
  readonly captureTimeMs: number
  /** 16 kHz s16le mono samples (even length). */
  readonly pcm: Uint8Array
}

/** Milliseconds of audio in a chunk. */
export const chunkDurationMs = (chunk: SinkAudioChunk): number => chunk.pcm.byteLength / SINK_BYTES_PER_MS

/** A transcript from the ASR gateway (proto `auralink.asr.v1.Transcript`, camelCase as proto-loader gives it). */
export const Transcript = Schema.Struct({
  sessionId: Schema.String,
  /** The producer whose audio this is (set from the stream it came back on). */
  producerId: Schema.String,
  text: Schema.String,
  isFinal: Schema.Boolean,
  startMs: Schema.Number,
  endMs: Schema.Number,
  confidence: Schema.Number
})
export type Transcript = typeof Transcript.Type

/** A producer's sink stream could not be opened (bad id, already open, file or gateway set-up failure). */
export class AudioSinkError extends Schema.TaggedError<AudioSinkError>()("AudioSinkError", {
  sessionId: Schema.String,
  message: Schema.String
}) {}

/** `send` after the session's sink stream was closed. */
export class AudioSinkClosed extends Schema.TaggedError<AudioSinkClosed>()("AudioSinkClosed", {
  sessionId: Schema.String
}) {}
