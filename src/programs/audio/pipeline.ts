import { Cause, Data, Effect, Queue, Result, Scope, Stream } from "effect"
import { AudioMetrics } from "../../layers/audio/metrics.ts"
import type { AudioPath, PcmChunk } from "../../schemas/audio.ts"
import { AudioDecoders } from "../../layers/AudioDecoders.ts"
import { DEFAULT_JITTER_BUFFER_MS, JitterBuffer } from "./jitter.ts"
import { MAX_CONCEALMENT_MS, type OpusRtpDecoderOptions, parseOpusRtp } from "../../media/opus.ts"
import { SequenceTracker, type SequenceVerdict } from "../../media/sequence.ts"
import { encodeChunkError, type ParseChunkOptions, parseChunk } from "./pcm.ts"

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
  /**
   * Runs the stream into `sink`, one batch (what was buffered) at a time, in order (the sink's
   * pace is the back-pressure: while it is busy, chunks wait in the bounded buffer). Latency is
   * observed when the stream emits (`latency: "emit"`), i.e. right before `sink` gets the chunks.
   * With `offer`, a chunk that finds nothing buffered and no batch at the sink is first offered
   * there directly, synchronously, from the source's callback (true: taken; the caller observes its
   * latency as for `latency: "manual"`): one fiber hop less per packet while the sink keeps up.
   */
  readonly toSink: <E, R>(
    sink: (chunks: ReadonlyArray<ReceivedChunk>) => Effect.Effect<void, E, R>,
    offer?: (chunk: ReceivedChunk) => boolean
  ) => Effect.Effect<void, E | AudioSourceError, R>
}

/** Raw messages held while a path's handler (its decoder) is being made; beyond this they are dropped as overflow. */
const MAX_EARLY_MESSAGES = 1000

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
    /** The sink's direct offer (see `toSink`), and whether a batch taken from the queue is still with the sink. */
    let direct: ((chunk: ReceivedChunk) => boolean) | undefined = undefined
    let sinking = false
    const accept: Accept = (chunk, receivedAt) => {
      if (closed) return
      const received: ReceivedChunk = { ...chunk, path, receivedAt }
      // Only when nothing is ahead of it, so the order holds.
      if (direct !== undefined && !sinking && Queue.sizeUnsafe(queue) === 0 && direct(received)) {
        counters.accepted++
        counters.emitted++
        metrics.chunk(path)
        return
      }
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
    // Subscribed before the handler is made (a decoder may take a while the first time): what comes
    // meanwhile waits in `early` and is handled first, so the first packets of a stream are not lost.
    let handler: PathHandler | undefined = undefined
    let early: Array<{ readonly message: Uint8Array; readonly receivedAt: number }> | undefined = []
    const ended = { early: false }
    let receiving = true
    const end = () => {
      const done = () => {
        closed = true
        Queue.endUnsafe(queue)
      }
      if (handler?.drain === undefined) done()
      else handler.drain(done)
    }
    const unsubscribe = source.subscribe({
      push: (message) => {
        if (!receiving) return
        counters.received++
        if (handler !== undefined) return handler.receive(message, monotonicNow())
        if (early !== undefined && early.length < MAX_EARLY_MESSAGES) early.push({ message, receivedAt: monotonicNow() })
        else {
          counters.overflow++
          metrics.dropped(path, "overflow")
        }
      },
      // What is in flight (decoding) is still delivered, then the stream ends (or fails).
      end: () => {
        receiving = false
        if (handler === undefined) ended.early = true
        else end()
      },
      fail: (cause) => {
        receiving = false
        fail(cause)
      }
    })
    const made = yield* makeHandler({ accept, fail, counters, metrics })
    handler = made
    const waiting = early
    early = undefined
    for (const { message, receivedAt } of waiting) made.receive(message, receivedAt)
    if (ended.early) end()
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
      sinking = true
      counters.emitted += chunks.length
      if (counters.paused && Queue.sizeUnsafe(queue) <= capacity / 2) {
        counters.paused = false
        source.resume?.()
      }
      if (observeOnEmit) { for (const chunk of chunks) delivered(chunk) }
      return chunks
    })
    const stream: Stream.Stream<ReceivedChunk, AudioSourceError> = Stream.fromPull(Effect.succeed(takeBatch))
    const toSink: AudioIngest["toSink"] = (sink, offer) =>
      Effect.suspend(() => {
        direct = offer
        return Stream.runForEachArray(stream, (chunks) => Effect.ensuring(sink(chunks), Effect.sync(() => sinking = false)))
      }).pipe(Effect.ensuring(Effect.sync(() => direct = undefined)))

    return {
      path,
      capacity,
      stream,
      delivered,
      toSink,
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
  /** Jitter buffer window, ms: how long packets after a hole wait for the missing one (default {@link DEFAULT_JITTER_BUFFER_MS}; 0: none). */
  readonly jitterBufferMs?: number
}

/** Lost audio filled with Opus packet-loss concealment per gap on the RTP path (the rest of a longer gap stays a gap). */
export const RTP_CONCEALMENT_MS = MAX_CONCEALMENT_MS

/** A packet waiting in the jitter buffer, with its times. */
interface WaitingPacket {
  readonly message: Uint8Array
  readonly arrivalMs: number
  readonly receivedAt: number
}

/** Opus decode errors logged per stream: the first, then at most one line per this many ms (with a count). */
const DECODE_ERROR_LOG_EVERY_MS = 10_000

/**
 * Path 2, Opus RTP: each message is one RTP packet. Packets go through a jitter buffer (see
 * `JitterBuffer`: in order at once; after a hole, they wait up to `jitterBufferMs` for the missing
 * one; reordered ones are counted and put back in place, ones past the window are dropped as late,
 * duplicates dropped), then are depacketized and decoded (by `AudioDecoders`, on a decode thread
 * unless configured otherwise) to a 16 kHz chunk (see `OpusRtpDecoder` for sequence, capture-time
 * and no-audio semantics). A hole given up is loss: counted, and its first packets filled with Opus
 * packet-loss concealment (up to {@link RTP_CONCEALMENT_MS}). Malformed packets, wrong payload types
 * and decode errors are counted by reason (decode errors also logged, rate-limited). When the source
 * ends, held and in-flight packets are delivered first. The decoder is freed when the scope closes.
 */
export const rtpIngest = (
  source: AudioSource,
  options: RtpIngestOptions
): Effect.Effect<AudioIngest, never, AudioMetrics | AudioDecoders | Scope.Scope> =>
  ingest("rtp", source, options, ({ accept, fail, counters, metrics }) =>
    Effect.gen(function*() {
      const wallNow = options.wallNow ?? Date.now
      const monotonicNow = options.monotonicNow ?? (() => performance.now())
      const context = yield* Effect.context<never>()
      const decodeErrors = { count: 0, loggedAt: -Infinity }
      const logDecodeError = (detail: string) => {
        decodeErrors.count++
        const now = monotonicNow()
        if (now - decodeErrors.loggedAt < DECODE_ERROR_LOG_EVERY_MS) return
        const count = decodeErrors.count
        decodeErrors.count = 0
        decodeErrors.loggedAt = now
        Effect.runForkWith(context)(Effect.logWarning("Opus packet not decoded", { detail, packets: count }))
      }
      const decoderOptions: OpusRtpDecoderOptions = { concealMs: RTP_CONCEALMENT_MS, ...options.decoder }
      const decoder = yield* (yield* AudioDecoders).openOpus(decoderOptions, {
        outcome: (result, receivedAt) => {
          if (Result.isFailure(result)) {
            counters.rejected++
            metrics.reject("rtp", result.failure.reason)
            if (result.failure.reason === "opus_decode_error") logDecodeError(result.failure.detail)
            return
          }
          const decoded = result.success
          metrics.bytes("rtp", decoded.payloadBytes)
          if (!recordVerdict("rtp", decoded.verdict, counters, metrics)) return
          if (decoded.concealed.length > 0) metrics.concealed("rtp", decoded.concealed.length)
          for (const chunk of decoded.concealed) accept(chunk, receivedAt)
          if (decoded.chunk !== undefined) accept(decoded.chunk, receivedAt)
        },
        failed: fail
      })

      const windowMs = options.jitterBufferMs ?? DEFAULT_JITTER_BUFFER_MS
      let jitter = new JitterBuffer<WaitingPacket>(windowMs)
      let ssrc: number | undefined = undefined
      let timer: ReturnType<typeof setTimeout> | undefined = undefined
      /** The deadline `timer` is set for: a packet that leaves it as it is does not reset the timer. */
      let armedFor: number | undefined = undefined
      const released: Array<WaitingPacket> = []
      const decodeReleased = () => {
        for (const p of released) decoder.decode(p.message, p.arrivalMs, p.receivedAt)
        released.length = 0
      }
      const arm = () => {
        const due = jitter.deadline()
        if (timer !== undefined && due === armedFor) return
        if (timer !== undefined) clearTimeout(timer)
        timer = undefined
        armedFor = due
        if (due === undefined) return
        timer = setTimeout(() => {
          timer = undefined
          jitter.poll(monotonicNow(), released)
          decodeReleased()
          arm()
        }, Math.max(1, Math.ceil(due - monotonicNow())))
        timer.unref()
      }
      yield* Effect.addFinalizer(() => Effect.sync(() => timer !== undefined && clearTimeout(timer)))

      const receive: Receive = (message, receivedAt) => {
        const parsed = parseOpusRtp(message)
        const expected = options.decoder?.payloadType
        // Not for the buffer: the decoder rejects it and counts why.
        if (Result.isFailure(parsed) || (expected !== undefined && parsed.success.payloadType !== expected)) {
          return decoder.decode(message, wallNow(), receivedAt)
        }
        const packet = parsed.success
        if (ssrc !== packet.ssrc) {
          // A new stream: the old one's held packets go first (the decoder resets on the new SSRC).
          jitter.flush(released)
          decodeReleased()
          jitter = new JitterBuffer<WaitingPacket>(windowMs)
          ssrc = packet.ssrc
        }
        const verdict = jitter.push(packet.sequence, receivedAt, { message, arrivalMs: wallNow(), receivedAt }, released)
        if (verdict === "Reordered") metrics.reordered("rtp")
        if (verdict === "Late") {
          counters.late++
          metrics.dropped("rtp", "late")
        }
        if (verdict === "Duplicate") {
          counters.duplicates++
          metrics.dropped("rtp", "duplicate")
        }
        decodeReleased()
        if (timer !== undefined || jitter.size > 0) arm()
      }
      return {
        receive,
        drain: (done) => {
          jitter.flush(released)
          decodeReleased()
          arm()
          decoder.end(done)
        }
      }
    }))
