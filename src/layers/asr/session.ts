import type * as grpc from "@grpc/grpc-js"
import type { MethodDefinition } from "@grpc/proto-loader"
import { Cause, Deferred, Duration, Effect, Exit, Fiber, Queue, Schedule, Schema, Semaphore, Stream } from "effect"
import { AudioSinkClosed, chunkDurationMs, type SinkAudioChunk, Transcript } from "../../schemas/asr.ts"
import type { CircuitBreaker } from "../resilience/circuitBreaker.ts"
import { keepConnected, reconnectBackoff } from "../resilience/reconnect.ts"
import type { AudioSinkStream, AudioStreamKey } from "./types.ts"
import { audioChunkEncoder } from "./chunk-encoding.ts"
import type { AsrMetrics } from "./metrics.ts"
import { errorMessage } from "../error-message.ts"

export interface AsrSessionOptions extends AudioStreamKey {
  readonly client: grpc.Client
  readonly method: MethodDefinition<object, object>
  readonly breaker: CircuitBreaker
  readonly metrics: AsrMetrics
  readonly deadlineMs: number
  readonly reconnectBaseMs: number
  readonly reconnectMaxMs: number
  readonly replayBufferMs: number
  readonly queueCapacity: number
}

/** Per-stream counters, for `/status` and tests. */
export interface AsrSessionStats {
  readonly connected: boolean
  readonly queued: number
  readonly maxQueued: number
  /** Chunks `offer` wrote straight to the call that grpc-js has not taken yet. */
  readonly inFlight: number
  readonly bufferedMs: number
  readonly sent: number
  readonly replayed: number
  readonly dropped: number
  readonly reconnects: number
  readonly transcripts: number
}

export class AsrStreamFailed extends Schema.TaggedError<AsrStreamFailed>()("AsrStreamFailed", {
  message: Schema.String
}) {}

interface Entry {
  /** The chunk, encoded (only that is kept: not the chunk, whose samples may be a view on a larger buffer). */
  readonly message: Buffer
  readonly ms: number
  /** Written on the current connection; cleared for all entries when a connection fails. */
  sent: boolean
  /** Written on some connection (evicting one that never was is a loss). */
  everSent: boolean
}

interface Live {
  readonly call: grpc.ClientDuplexStream<Buffer, object>
  /** Completed (with the reason) when the call ends for any reason. */
  readonly closed: Deferred.Deferred<string>
  /** The batch being written: failed at once when the call ends. */
  pending: { readonly fail: (reason: string) => void } | undefined
  /** Chunks `offer` wrote straight to the call that grpc-js has not taken yet. */
  direct: number
  /** When a direct write was last taken, or started with none in flight (`performance.now()` ms). */
  progressAt: number
  /** Checks the direct writes against the deadline while the call is live. */
  watchdog: ReturnType<typeof setInterval> | undefined
}

/** Ends a call's bookkeeping: the reason is recorded once and a write in flight is failed with it. */
const ended = (l: Live, reason: string): void => {
  Deferred.doneUnsafe(l.closed, Effect.succeed(reason))
  if (l.watchdog !== undefined) clearInterval(l.watchdog)
  l.pending?.fail(reason)
}

/**
 * Chunks `offer` may have written to the call and not yet taken by grpc-js. Beyond it chunks go
 * through the queue and the pump, whose write waits for them all: the back-pressure and the
 * deadline of the queued path then hold for the direct writes too.
 */
const DIRECT_IN_FLIGHT = 8

/**
 * One producer's stream to the ASR gateway. `send` puts chunks on a bounded queue; a pump fiber
 * moves what is queued, as one batch, into the replay buffer (the last ASR_REPLAY_BUFFER_MS of
 * audio) and writes it to the live call, waiting until grpc-js has taken the whole batch (HTTP/2
 * flow control reaches `send` as back-pressure). A write not taken within the deadline fails the
 * call. A connector fiber (`keepConnected`, shared with the AI Core client) (re)opens the call
 * through the circuit breaker with the jittered exponential backoff schedule; after a reconnect it re-sends the whole replay buffer in order before the
 * pump continues, so within the window nothing is lost (the gateway de-duplicates by sequence).
 * While there is no call the pump keeps draining the queue into the buffer, so the media path is
 * never held up by an outage; the oldest unsent chunks beyond the window are dropped and counted.
 * `offer` skips queue and pump while the call is live and nothing is ahead of the chunk: it
 * writes it at once (at most DIRECT_IN_FLIGHT untaken; a watchdog holds them to the deadline).
 */
export const makeAsrSession = (o: AsrSessionOptions) =>
  Effect.gen(function*() {
    const queue = yield* Queue.bounded<SinkAudioChunk, Cause.Done>(o.queueCapacity)
    const transcripts = yield* Queue.sliding<Transcript, Cause.Done>(1024)
    const lock = yield* Semaphore.make(1)
    const log = (effect: Effect.Effect<void>) => effect.pipe(Effect.annotateLogs({ sessionId: o.sessionId, producerId: o.producerId, sink: "asr_gateway" }))

    const replay: Array<Entry> = []
    let replayMs = 0
    let live: Live | undefined
    let closing = false
    let droppedThisOutage = 0
    const stats = { sent: 0, replayed: 0, dropped: 0, reconnects: 0, transcripts: 0, maxQueued: 0 }
    let streamState: "connected" | "reconnecting" = "reconnecting"
    o.metrics.streams.inc({ state: streamState })
    const setState = (next: "connected" | "reconnecting") => {
      if (next === streamState) return
      o.metrics.streams.dec({ state: streamState })
      o.metrics.streams.inc({ state: next })
      streamState = next
    }

    const drop = (count: number, reason: string) => {
      stats.dropped += count
      o.metrics.chunksDropped.inc({ reason }, count)
    }

    const encode = audioChunkEncoder(o)

    /** Appends to the replay buffer, evicting the oldest beyond the window (an unsent eviction is a loss). */
    const remember = (chunk: SinkAudioChunk): Entry => {
      const entry: Entry = { message: encode(chunk.sequence, chunk.captureTimeMs, chunk.pcm), ms: chunkDurationMs(chunk), sent: false, everSent: false }
      replay.push(entry)
      replayMs += entry.ms
      while (replay.length > 1 && replayMs > o.replayBufferMs) {
        const oldest = replay.shift()!
        replayMs -= oldest.ms
        if (!oldest.everSent) {
          drop(1, "replay_buffer_full")
          droppedThisOutage += 1
        }
      }
      return entry
    }

    const failNow = (l: Live, reason: string) => {
      if (Deferred.isDoneUnsafe(l.closed)) return
      l.call.cancel()
      ended(l, reason)
    }
    const fail = (l: Live, reason: string) => Effect.sync(() => failNow(l, reason))
    const stalled = `write not taken within ${o.deadlineMs} ms (stalled)`

    /**
     * Writes a batch and waits until grpc-js has taken all of it; false (and the call failed) if it
     * did not, or if it was not all taken within the deadline (a stalled gateway). The deadline is a
     * plain timer, not `Effect.timeout`: that forks two fibers per batch, a twentieth of the main
     * thread with one batch per packet (bench/audio-ingest).
     */
    const write = (l: Live, entries: ReadonlyArray<Entry>): Effect.Effect<boolean> =>
      Effect.callback<boolean>((resume) => {
        if (Deferred.isDoneUnsafe(l.closed)) return resume(Effect.succeed(false))
        let remaining = entries.length
        let settled = false
        const settle = (failure: string | undefined) => {
          if (settled) return
          settled = true
          clearTimeout(deadline)
          l.pending = undefined
          if (failure === undefined) return resume(Effect.succeed(true))
          resume(Effect.as(fail(l, failure), false))
        }
        const deadline = setTimeout(() => settle(stalled), o.deadlineMs)
        l.pending = { fail: settle }
        for (const entry of entries) {
          l.call.write(entry.message, (error: Error | null | undefined) => {
            if (error) return settle(errorMessage(error))
            entry.sent = true
            entry.everSent = true
            stats.sent += 1
            o.metrics.chunksSent.inc()
            if (--remaining === 0) settle(undefined)
          })
        }
        // Interrupted: the write no longer waits; the call's end must not resume it.
        return Effect.sync(() => {
          settled = true
          clearTimeout(deadline)
          l.pending = undefined
        })
      })

    /** Chunks put on the queue that the pump has not written (or buffered) yet: `offer` writes directly only at 0, so the order holds. */
    let backlog = 0

    const pump = Effect.gen(function*() {
      while (true) {
        const next = yield* Effect.result(Queue.takeAll(queue))
        if (next._tag === "Failure") return
        yield* lock.withPermit(Effect.suspend(() => {
          const entries = next.success.map(remember)
          const l = live
          return l === undefined || Deferred.isDoneUnsafe(l.closed) ? Effect.void : write(l, entries)
        }))
        backlog -= next.success.length
      }
    })

    /** Fails the call when direct writes have been in flight without progress for the deadline (as `write` does for a batch). */
    const watch = (l: Live) =>
      setInterval(() => {
        if (l.direct > 0 && performance.now() - l.progressAt > o.deadlineMs) failNow(l, stalled)
      }, Math.max(10, o.deadlineMs / 4)).unref()

    /**
     * Writes one chunk straight to the live call, from the caller's callback: no queue, fiber or
     * timer per chunk (bench/audio-ingest: the pump's hop per packet was the largest avoidable
     * share of the main thread). Only when nothing queued, replayed or batched is ahead of it.
     */
    const writeDirect = (chunk: SinkAudioChunk): boolean => {
      const l = live
      // "connected" is set once the replay after a (re)connect is written: nothing jumps ahead of it.
      if (
        backlog > 0 || l === undefined || streamState !== "connected" || l.pending !== undefined || l.direct >= DIRECT_IN_FLIGHT ||
        Deferred.isDoneUnsafe(l.closed)
      ) {
        return false
      }
      const entry = remember(chunk)
      if (l.direct++ === 0) l.progressAt = performance.now()
      l.watchdog ??= watch(l)
      l.call.write(entry.message, (error: Error | null | undefined) => {
        l.direct--
        l.progressAt = performance.now()
        if (error) return failNow(l, errorMessage(error))
        if (Deferred.isDoneUnsafe(l.closed)) return
        entry.sent = true
        entry.everSent = true
        stats.sent += 1
        o.metrics.chunksSent.inc()
      })
      return true
    }

    const onData = (value: object) => {
      const decoded = Schema.decodeUnknownExit(Transcript)(value)
      if (Exit.isSuccess(decoded)) {
        stats.transcripts += 1
        o.metrics.transcripts.inc({ final: String(decoded.value.isFinal) })
        // The stream says whose audio it is, whatever the gateway echoed.
        Queue.offerUnsafe(transcripts, { ...decoded.value, sessionId: o.sessionId, producerId: o.producerId })
      }
    }

    /** Waits (up to the deadline) for the channel, then opens the call. */
    const connect: Effect.Effect<Live, AsrStreamFailed> = Effect.gen(function*() {
      yield* Effect.callback<void, AsrStreamFailed>((resume) => {
        o.client.waitForReady(Date.now() + o.deadlineMs, (error) =>
          resume(error ? Effect.fail(new AsrStreamFailed({ message: `ASR gateway not reachable: ${error.message}` })) : Effect.void))
      })
      // Chunks are written already encoded (see chunk-encoding.ts).
      const call = o.client.makeBidiStreamRequest(o.method.path, (encoded: Buffer) =>
        encoded, o.method.responseDeserialize)
      const l: Live = { call, closed: yield* Deferred.make<string>(), pending: undefined, direct: 0, progressAt: 0, watchdog: undefined }
      call.on("data", onData)
      call.on("error", (error: grpc.ServiceError) => ended(l, `stream failed: ${error.message}`))
      call.on("status", (status: grpc.StatusObject) => ended(l, `stream ended: ${status.code} ${status.details}`))
      return l
    })

    /** One connection's life: opened through the breaker, the buffer replayed, then served until the call ends (its reason). */
    const connection = Effect.gen(function*() {
      const l = yield* o.breaker.protect(connect)
      // Replay the buffer, in order, before the pump writes anything newer.
      const replayed = yield* lock.withPermit(Effect.gen(function*() {
        live = l
        const entries = [...replay]
        return entries.length > 0 && (yield* write(l, entries)) ? entries.length : 0
      }))
      if (replayed > 0) {
        stats.replayed += replayed
        o.metrics.chunksReplayed.inc(replayed)
      }
      if (droppedThisOutage > 0) {
        yield* log(Effect.logWarning(`ASR gateway outage exceeded the replay buffer (${o.replayBufferMs} ms): ${droppedThisOutage} oldest chunk(s) dropped`))
        droppedThisOutage = 0
      }
      setState("connected")
      const reason = yield* Deferred.await(l.closed)
      yield* lock.withPermit(Effect.sync(() => {
        live = undefined
        for (const entry of replay) entry.sent = false
      }))
      return reason
    })

    const connector = keepConnected(connection, {
      backoff: reconnectBackoff(o.reconnectBaseMs, o.reconnectMaxMs),
      onFailure: (error, attempt) =>
        attempt === 1 || attempt % 10 === 0
          ? log(Effect.logWarning(`ASR gateway stream not established (attempt ${attempt}): ${error.message}; audio is buffered (${Math.round(replayMs)} ms)`))
          : Effect.void,
      stop: () => closing,
      onEnded: (reason) =>
        Effect.suspend(() => {
          setState("reconnecting")
          stats.reconnects += 1
          o.metrics.reconnects.inc()
          return log(Effect.logWarning(`ASR gateway ${reason}; reconnecting, replaying the last ${Math.round(replayMs)} ms`))
        })
    })

    const pumpFiber = yield* Effect.forkDetach(pump)
    const connectorFiber = yield* Effect.forkDetach(connector)

    let closed: Deferred.Deferred<void> | undefined
    const close: Effect.Effect<void> = Effect.suspend(() => {
      if (closed !== undefined) return Deferred.await(closed)
      const done = Deferred.makeUnsafe<void>()
      closed = done
      return Effect.gen(function*() {
        yield* Queue.end(queue)
        // Let the pump flush what is queued (to the call, or into the buffer).
        yield* Fiber.await(pumpFiber).pipe(Effect.timeout(Duration.millis(o.deadlineMs)), Effect.ignore)
        // Not connected (or still replaying): give the connector up to the deadline to deliver the buffer.
        yield* Effect.suspend(() =>
          live !== undefined && !Deferred.isDoneUnsafe(live.closed) && replay.every((e) => e.sent) ? Effect.void : Effect.fail("pending")
        ).pipe(Effect.retry(Schedule.spaced("10 millis")), Effect.timeout(Duration.millis(o.deadlineMs)), Effect.ignore)
        const l = live
        const unsent = replay.filter((e) => !e.everSent).length
        closing = true
        if (l !== undefined && !Deferred.isDoneUnsafe(l.closed)) {
          // Half-close and wait for the gateway's final transcripts and status.
          l.call.end()
          yield* Deferred.await(l.closed).pipe(Effect.timeout(Duration.millis(o.deadlineMs)), Effect.ignore)
          yield* fail(l, "closed")
        } else if (unsent > 0) {
          drop(unsent, "closed_unsent")
          yield* log(Effect.logWarning(`ASR stream closed while disconnected: ${unsent} buffered chunk(s) not delivered`))
        }
        yield* Fiber.interrupt(pumpFiber)
        yield* Fiber.interrupt(connectorFiber)
        yield* Queue.end(transcripts)
        o.metrics.streams.dec({ state: streamState })
      }).pipe(Effect.ensuring(Deferred.succeed(done, undefined)), Effect.uninterruptible)
    })

    const queued = () => {
      const size = Queue.sizeUnsafe(queue)
      if (size > stats.maxQueued) stats.maxQueued = size
    }
    /** Queues the chunk if the queue has room (no effect per chunk in the usual case). */
    const enqueue = (chunk: SinkAudioChunk): boolean => {
      if (!Queue.offerUnsafe(queue, chunk)) return false
      backlog++
      queued()
      return true
    }

    const send = (chunk: SinkAudioChunk): Effect.Effect<void, AudioSinkClosed> =>
      Effect.suspend(() => {
        if (closed !== undefined) return Effect.fail(new AudioSinkClosed({ sessionId: o.sessionId }))
        if (enqueue(chunk)) return Effect.void
        // A full queue waits; counted before it is queued: the pump may take it before this fiber goes on.
        backlog++
        const offered = Effect.onInterrupt(Queue.offer(queue, chunk), () => Effect.sync(() => backlog--))
        return Effect.flatMap(offered, (accepted) => {
          if (!accepted) {
            backlog--
            return Effect.fail(new AudioSinkClosed({ sessionId: o.sessionId }))
          }
          queued()
          return Effect.void
        })
      })

    const offer = (chunk: SinkAudioChunk): boolean => closed === undefined && (writeDirect(chunk) || enqueue(chunk))

    const handle: AudioSinkStream & { readonly stats: Effect.Effect<AsrSessionStats> } = {
      sessionId: o.sessionId,
      producerId: o.producerId,
      path: o.path,
      send,
      offer,
      transcripts: Stream.fromQueue(transcripts),
      close,
      stats: Effect.map(Queue.size(queue), (queued) => ({
        connected: live !== undefined && !Deferred.isDoneUnsafe(live.closed),
        queued,
        maxQueued: stats.maxQueued,
        inFlight: live?.direct ?? 0,
        bufferedMs: replayMs,
        sent: stats.sent,
        replayed: stats.replayed,
        dropped: stats.dropped,
        reconnects: stats.reconnects,
        transcripts: stats.transcripts
      }))
    }
    return handle
  })

export type AsrSessionHandle = Effect.Success<ReturnType<typeof makeAsrSession>>
