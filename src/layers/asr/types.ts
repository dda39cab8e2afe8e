import type { Effect, Scope, Stream } from "effect"
import type { AudioSinkClosed, AudioSinkError, SinkAudioChunk, Transcript } from "../../schemas/asr.ts"
import type { AudioPath } from "../../schemas/audio.ts"

/** Which audio a sink stream carries: one producer (Opus RTP or `audio-pcm` data) of one session. */
export interface AudioStreamKey {
  readonly sessionId: string
  readonly producerId: string
  /** `rtp` (Opus producer) or `datachannel` (PCM chunks): what `sequence` and capture time mean. */
  readonly path: AudioPath
}

/** The key's text form (`<sessionId>/<producerId>`), for maps and logs. */
export const streamKey = (key: Pick<AudioStreamKey, "sessionId" | "producerId">): string => `${key.sessionId}/${key.producerId}`

/** One producer's audio output: where the audio path sends validated 16 kHz chunks. */
export interface AudioSinkStream extends AudioStreamKey {
  /**
   * Hands a chunk to the sink. Waits only while the stream's bounded queue is full
   * (back-pressure); never for the network: during an outage chunks go to the replay buffer.
   */
  readonly send: (chunk: SinkAudioChunk) => Effect.Effect<void, AudioSinkClosed>
  /**
   * Hands a chunk over at once, synchronously, when the stream takes it without waiting (open, its
   * queue not full): true; otherwise false and nothing happened (then `send`). Optional.
   */
  readonly offer?: (chunk: SinkAudioChunk) => boolean
  /** Transcripts of this stream as they arrive; ends when the stream is closed (empty for the recording sink). */
  readonly transcripts: Stream.Stream<Transcript>
  /**
   * Flushes what is queued, ends the stream (ASR: half-close and wait, up to the deadline, for
   * final transcripts; recording: patch the WAV header) and releases it. Idempotent; also run
   * when the scope of `openStream` closes.
   */
  readonly close: Effect.Effect<void>
}

export interface AudioSinkService {
  /** Which implementation is live. */
  readonly kind: "asr_gateway" | "recording"
  /**
   * Opens the sink for one producer: every audio producer of a session gets its own stream (ASR
   * gateway stream, WAV file). Fails if that producer's stream is already open. The stream
   * closes (as `close`) with the scope.
   */
  readonly openStream: (key: AudioStreamKey) => Effect.Effect<AudioSinkStream, AudioSinkError, Scope.Scope>
}
