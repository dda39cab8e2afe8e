import { Cause, Data, Effect, Queue, Result, Scope, Stream } from "effect"
import { AudioMetrics } from "../../layers/audio/metrics.ts"
import type { AudioPath, PcmChunk } from "../../schemas/audio.ts"
import { AudioDecoders } from "../../layers/AudioDecoders.ts"
import type { OpusRtpDecoderOptions } from "./opus.ts"
import { encodeChunkError, type ParseChunkOptions, parseChunk, SequenceTracker, type SequenceVerdict } from "./pcm.ts"

/** A validated chunk with where and when it came in. */
export interface ReceivedChunk extends PcmChunk {
  readonly path: AudioPath
  /** Receipt time, `performance.now()` ms (monotonic; for the server-latency histogram). */
  readonly receivedAt: number
}

/** The source failed (the transport closed with an error, ...): ends the session's stream with it. */
export class AudioSourceError extends Data.TaggedError("AudioSourceError")<{
  readonly path: AudioPath
  readonly cause: unknown
}> {}

/** How a source hands messages to the pipeline. Call from any callback; all are synchronous. */
export interface AudioSourceHandlers {
  /** One raw message: a data-channel message (chunk) or one RTP packet. */
  readonly push: (message: Uint8Array) => void
  /** The source ended normally (buffered chunks are still delivered, then the stream ends). */
  readonly end: () => void
  /** The source failed (buffered chunks are still delivered, then the stream fails). */
  readonly fail: (cause: unknown) => void
}

/**
 * A callback-style source of raw messages: a mediasoup DataConsumer's `message` events (data-channel
 * path) or a DirectTransport Consumer's `rtp` events (RTP path), or a UDP socket, or a test.
 */
export interface AudioSource {
  /** Starts delivering to `handlers`; returns the function that stops it (called when the ingest's scope closes). */
  readonly subscribe: (handlers: AudioSourceHandlers) => () => void
  /**
   * Flow control, when the source can apply it: `pause` is called when the buffer is full,
   * `resume` when it has drained to half. Without it (mediasoup data consumers and RTP cannot be
   * held back), a full buffer drops its oldest chunk to make room (`overflow`).
   */
  readonly pause?: () => void
  readonly resume?: () => void
  /** Data-channel path: sends a text message back to the client (the JSON reject messages). */
  readonly reply?: (text: string) => void
}

export interface AudioIngestOptions {
  /** Chunks the per-session buffer holds (>= 1). */
  readonly capacity: number
  /**
   * When the receipt -> sink latency is observed: `"emit"` (default) when the stream hands the
   * chunk downstream, `"manual"` when the sink calls `delivered(chunk)` itself (e.g. after the
   * ASR send).
   */
  readonly latency?: "emit" | "manual"
  /** Monotonic clock for `receivedAt` (default `performance.now`). */
  readonly monotonicNow?: () => number
  /** Wallclock for capture-time checks and RTP capture-time mapping (default `Date.now`). */
  readonly wallNow?: () => number
}

export interface AudioIngestStats {
  /** Messages received from the source. */
  readonly received: number
  /** Valid chunks put in the buffer. */
  readonly accepted: number
  readonly rejected: number
  readonly lost: number
  readonly duplicates: number
  readonly late: number
  /** Valid chunks dropped because the buffer was full. */
  readonly overflow: number
  /** Chunks handed downstream. */
  readonly emitted: number
  /** Chunks in the buffer now, and the most it ever held (never above `capacity`). */
  readonly depth: number
  readonly highWater: number
  readonly paused: boolean
}

/** One session's audio: the stream of validated 16 kHz chunks and its bookkeeping. */
export interface AudioIngest {
  readonly path: AudioPath
  readonly capacity: number
  /** Validated chunks in order of arrival. Single consumer. Ends when the source ends or the scope closes. */
  readonly stream: Stream.Stream<ReceivedChunk, AudioSourceError>
  readonly stats: () => AudioIngestStats
  /** Observes the receipt -> sink latency of `chunk` (for `latency: "manual"`). */
  readonly delivered: (chunk: ReceivedChunk) => void
}

/** Buffers one valid chunk that was received at `receivedAt` (a path's parser or decoder calls it, in order). */
type Accept = (chunk: PcmChunk, receivedAt: number) => void

/** Handles one raw message (validating or decoding it), recording metrics/stats; valid chunks go to `accept`. */
type Receive = (message: Uint8Array, receivedAt: number) => void

/** What a path builds its `Receive` from. */
interface PathContext {
  readonly accept: Accept
  /** The path can no longer deliver (its decoder is gone): the stream fails with `cause`. */
  readonly fail: (cause: unknown) => void
  readonly counters: Counters
  readonly metrics: AudioMetrics["Service"]
}

/** A path's message handler, and how it finishes what it has in flight when the source ends. */
interface PathHandler {
  readonly receive: Receive
  /** Calls `done` when every message received so far has been handled (default: at once). */
  readonly drain?: (done: () => void) => void
}

interface Counters {
  received: number
  accepted: number
  rejected: number
  lost: number
  duplicates: number
  late: number
  overflow: number
  emitted: number
  highWater: number
  paused: boolean
}

const ingest = <R>(
  path: AudioPath,
  source: AudioSource,
  options: AudioIngestOptions,
  makeHandler: (context: PathContext) => Effect.Effect<PathHandler, never, R | Scope.Scope>
): Effect.Effect<AudioIngest, never, AudioMetrics | R | Scope.Scope> =>
  Effect.gen(function*() {
    const metrics = yield* AudioMetrics
    const capacity = Math.max(1, Math.floor(options.capacity))
    const monotonicNow = options.monotonicNow ?? (() => performance.now())
    const observeOnEmit = (options.latency ?? "emit") === "emit"
    const counters: Counters = {
      received: 0,
      accepted: 0,
      rejected: 0,
      lost: 0,
      duplicates: 0,
      late: 0,
      overflow: 0,
      emitted: 0,
      highWater: 0,
      paused: false
    }
    const queue = yield* Queue.bounded<ReceivedChunk, AudioSourceError | Cause.Done>(capacity)

    let closed = false
    const accept: Accept = (chunk, receivedAt) => {
      if (closed) return
      const received: ReceivedChunk = { ...chunk, path, receivedAt }
      if (Queue.isFullUnsafe(queue) && Queue.takeUnsafe(queue) !== undefined) {
        // Full: the oldest chunk makes room (the source could not be held back in time).
        counters.overflow++
        metrics.dropped(path, "overflow")
      }
      if (!Queue.offerUnsafe(queue, received)) return
      counters.accepted++
      metrics.chunk(path)
      const depth = Queue.sizeUnsafe(queue)
      if (depth > counters.highWater) counters.highWater = depth
      if (depth >= capacity && source.pause !== undefined && !counters.paused) {
        counters.paused = true
        source.pause()
      }
    }
    const fail = (cause: unknown) => {
      closed = true
      Queue.failCauseUnsafe(queue, Cause.fail(new AudioSourceError({ path, cause })))
    }
    const handler = yield* makeHandler({ accept, fail, counters, metrics })
    let receiving = true
    const unsubscribe = source.subscribe({
      push: (message) => {
        if (!receiving) return
        counters.received++
        handler.receive(message, monotonicNow())
      },
      // What is in flight (decoding) is still delivered, then the stream ends (or fails).
      end: () => {
        receiving = false
        const done = () => {
          closed = true
          Queue.endUnsafe(queue)
        }
        if (handler.drain === undefined) done()
        else handler.drain(done)
      },
      fail: (cause) => {
        receiving = false
        fail(cause)
      }
    })
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        receiving = false
        closed = true
        unsubscribe()
        Queue.endUnsafe(queue)
      })
    )

    const delivered = (chunk: ReceivedChunk) => metrics.latency(chunk.path, monotonicNow() - chunk.receivedAt)
    // Everything buffered is taken in one pull: one fiber hop per batch, not per chunk.
    const takeBatch = Effect.map(Queue.takeAll(queue), (chunks) => {
      counters.emitted += chunks.length
      if (counters.paused && Queue.sizeUnsafe(queue) <= capacity / 2) {
        counters.paused = false
        source.resume?.()
      }
      if (observeOnEmit) for (const chunk of chunks) delivered(chunk)
      return chunks
    })
    const stream: Stream.Stream<ReceivedChunk, AudioSourceError> = Stream.fromPull(Effect.succeed(takeBatch))

    return {
      path,
      capacity,
      stream,
      delivered,
      stats: () => ({
        received: counters.received,
        accepted: counters.accepted,
        rejected: counters.rejected,
        lost: counters.lost,
        duplicates: counters.duplicates,
        late: counters.late,
        overflow: counters.overflow,
        emitted: counters.emitted,
        depth: Queue.sizeUnsafe(queue),
        highWater: counters.highWater,
        paused: counters.paused
      })
    }
  })

const recordVerdict = (path: AudioPath, verdict: SequenceVerdict, counters: Counters, metrics: AudioMetrics["Service"]): boolean => {
  switch (verdict._tag) {
    case "InOrder":
      return true
    case "Gap":
      counters.lost += verdict.lost
      metrics.loss(path, verdict.lost)
      return true
    case "Duplicate":
      counters.duplicates++
      metrics.dropped(path, "duplicate")
      return false
    case "Late":
      counters.late++
      metrics.dropped(path, "late")
      return false
  }
}

export interface DataChannelIngestOptions extends AudioIngestOptions {
  readonly parse?: Omit<ParseChunkOptions, "nowMs">
}

/**
 * Path 1, PCM over a data channel: each message is one chunk (layout in `src/schemas/audio.ts`),
 * validated on receipt; a reject is counted by reason and answered with `source.reply`
 * (`{"type":"error","reason":…,"sequence"?:…}`); duplicates and late chunks are dropped and
 * counted; gaps are counted as loss.
 */
export const dataChannelIngest = (
  source: AudioSource,
  options: DataChannelIngestOptions
): Effect.Effect<AudioIngest, never, AudioMetrics | Scope.Scope> =>
  ingest("datachannel", source, options, ({ accept, counters, metrics }) => {
    const tracker = new SequenceTracker(32)
    const wallNow = options.wallNow ?? Date.now
    return Effect.succeed({
      receive: (message, receivedAt) => {
        metrics.bytes("datachannel", message.byteLength)
        const parsed = parseChunk(message, { ...options.parse, nowMs: wallNow() })
        if (Result.isFailure(parsed)) {
          counters.rejected++
          metrics.reject("datachannel", parsed.failure.reason)
          source.reply?.(encodeChunkError(parsed.failure))
          return
        }
        if (recordVerdict("datachannel", tracker.track(parsed.success.sequence), counters, metrics)) accept(parsed.success, receivedAt)
      }
    })
  })

export interface RtpIngestOptions extends AudioIngestOptions {
  readonly decoder?: OpusRtpDecoderOptions
}

/**
 * Path 2, Opus RTP: each message is one RTP packet, depacketized and decoded (by `AudioDecoders`,
 * on a decode thread unless configured otherwise) to a 16 kHz chunk (see `OpusRtpDecoder` for
 * sequence and capture-time semantics). Malformed packets, wrong payload types and decode errors
 * are counted by reason; duplicates and late packets are dropped and counted; gaps are counted as
 * loss. When the source ends, packets still being decoded are delivered first. The decoder is
 * freed when the scope closes.
 */
export const rtpIngest = (
  source: AudioSource,
  options: RtpIngestOptions
): Effect.Effect<AudioIngest, never, AudioMetrics | AudioDecoders | Scope.Scope> =>
  ingest("rtp", source, options, ({ accept, fail, counters, metrics }) =>
    Effect.gen(function*() {
      const wallNow = options.wallNow ?? Date.now
      const decoder = yield* (yield* AudioDecoders).openOpus(options.decoder ?? {}, {
        outcome: (result, receivedAt) => {
          if (Result.isFailure(result)) {
            counters.rejected++
            metrics.reject("rtp", result.failure.reason)
            return
          }
          const decoded = result.success
          metrics.bytes("rtp", decoded.payloadBytes)
          if (recordVerdict("rtp", decoded.verdict, counters, metrics) && decoded.chunk !== undefined) accept(decoded.chunk, receivedAt)
        },
        failed: fail
      })
      return {
        receive: (message, receivedAt) => decoder.decode(message, wallNow(), receivedAt),
        drain: decoder.end
      }
    }))

/**
 * Runs an ingest's stream into a sink, one batch (what was buffered) at a time, in order (the
 * sink's pace is the back-pressure: while it is busy, chunks wait in the bounded buffer). Latency
 * is observed when the stream emits (`latency: "emit"`), i.e. right before `sink` gets the chunks.
 */
export const runToSink = <E, R>(
  audio: AudioIngest,
  sink: (chunks: ReadonlyArray<ReceivedChunk>) => Effect.Effect<void, E, R>
): Effect.Effect<void, E | AudioSourceError, R> => Stream.runForEachArray(audio.stream, sink)
