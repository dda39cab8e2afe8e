import type { Effect, Scope, Stream } from "effect"
import type { AudioSinkClosed, AudioSinkError, SinkAudioChunk, Transcript } from "../../schemas/asr.ts"

/** One session's audio output: where the audio path sends validated 16 kHz chunks. */
export interface AudioSinkStream {
  readonly sessionId: string
  /**
   * Hands a chunk to the sink. Waits only while the session's bounded queue is full
   * (back-pressure); never for the network: during an outage chunks go to the replay buffer.
   */
  readonly send: (chunk: SinkAudioChunk) => Effect.Effect<void, AudioSinkClosed>
  /** Transcripts for this session as they arrive; ends when the stream is closed (empty for the recording sink). */
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
  /** Opens the sink for a session; the stream closes (as `close`) with the scope. */
  readonly openStream: (sessionId: string) => Effect.Effect<AudioSinkStream, AudioSinkError, Scope.Scope>
}
