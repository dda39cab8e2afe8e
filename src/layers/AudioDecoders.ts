import { Context, Effect, Layer, Result } from "effect"
import type { Scope } from "effect"
import { Worker } from "node:worker_threads"
import { Counter } from "prom-client"
import type { OpusRtpDecoded, OpusRtpDecoderOptions, RtpRejected } from "../media/opus.ts"
import { type DecodeBatch, type DecodeResults, PACKET_FIELDS } from "./audio/decode-protocol.ts"
import { OpusRtpDecoder } from "./audio/opus-rtp-decoder.ts"
import { AppConfig } from "./Config.ts"
import { Metrics } from "./Metrics.ts"

/** Where one stream's decode outcomes go, in packet order. Called on the main thread. */
export interface OpusStreamHandlers {
  readonly outcome: (result: Result.Result<OpusRtpDecoded, RtpRejected>, receivedAt: number) => void
  /** The decoder is gone (its thread died): no more outcomes will come. */
  readonly failed: (cause: unknown) => void
}

/** One RTP stream's decoder. */
export interface OpusStream {
  /** Queues a packet (its bytes are copied into the batch before control returns to the event loop). */
  readonly decode: (packet: Uint8Array, arrivalMs: number, receivedAt: number) => void
  /** Calls `drained` once every packet queued so far has had its outcome; the stream takes no more packets. */
  readonly end: (drained: () => void) => void
}

export interface AudioDecodersService {
  /** Decode threads (0: decoding runs on the main thread). */
  readonly threads: number
  /** The live threads (as `MediaServer.workers`: for status and tests). */
  readonly workers: Effect.Effect<ReadonlyArray<Worker>>
  /** A decoder for one stream; freed when the scope closes. */
  readonly openOpus: (options: OpusRtpDecoderOptions, handlers: OpusStreamHandlers) => Effect.Effect<OpusStream, never, Scope.Scope>
}

/** Decoding on the calling thread: outcomes are delivered synchronously from `decode`. */
const inline: AudioDecodersService = {
  threads: 0,
  workers: Effect.succeed([]),
  openOpus: (options, handlers) =>
    Effect.map(
      Effect.acquireRelease(Effect.promise(() => OpusRtpDecoder.make(options)), (decoder) => Effect.sync(() => decoder.free())),
      (decoder): OpusStream => {
        let ended = false
        return {
          decode: (packet, arrivalMs, receivedAt) => {
            if (!ended) handlers.outcome(decoder.decode(packet, arrivalMs), receivedAt)
          },
          end: (drained) => {
            ended = true
            drained()
          }
        }
      }
    )
}

interface StreamEntry {
  readonly handlers: OpusStreamHandlers
  readonly thread: DecodeThread
  drained: (() => void) | undefined
}

/**
 * A thread and the batch being gathered for it. At most one batch is in flight per thread: while
 * the thread works, new packets gather and go as the next batch when its results come back, so
 * batches grow with load (one message per batch each way) and an idle thread gets a packet at once.
 */
interface DecodeThread {
  worker: Worker
  streams: number
  open: Array<DecodeBatch["open"][number]>
  packets: Array<{ readonly stream: number; readonly bytes: Uint8Array; readonly arrivalMs: number; readonly receivedAt: number }>
  close: Array<number>
  scheduled: boolean
  inFlight: boolean
}

const WORKER_URL = new URL("./audio/decode-worker.ts", import.meta.url)

/**
 * Opus decoding on worker threads: each stream is pinned to the least-loaded thread (so its
 * packets are decoded in order, by one decoder), packets queued within one synchronous run go to
 * a thread as one message (their bytes packed into one transferred buffer), and outcomes come
 * back the same way. A thread that dies fails its streams (their audio pipelines end with an
 * error), is counted in `auralink_audio_decode_thread_restarts_total` and replaced.
 */
const threaded = (count: number): Effect.Effect<AudioDecodersService, never, Metrics | Scope.Scope> =>
  Effect.gen(function*() {
    const { registry } = yield* Metrics
    const restarts = new Counter({
      name: "auralink_audio_decode_thread_restarts_total",
      help: "Opus decode threads that died and were replaced",
      registers: [registry]
    })
    const streams = new Map<number, StreamEntry>()
    let nextId = 1
    let stopping = false

    const flush = (thread: DecodeThread) => {
      thread.scheduled = false
      if (thread.inFlight || (thread.open.length === 0 && thread.packets.length === 0 && thread.close.length === 0)) return
      thread.inFlight = true
      let total = 0
      for (const p of thread.packets) total += p.bytes.byteLength
      const bytes = new ArrayBuffer(total)
      const view = new Uint8Array(bytes)
      const packets = new Float64Array(thread.packets.length * PACKET_FIELDS)
      let offset = 0
      let i = 0
      for (const p of thread.packets) {
        view.set(p.bytes, offset)
        packets[i++] = p.stream
        packets[i++] = offset
        packets[i++] = p.bytes.byteLength
        packets[i++] = p.arrivalMs
        packets[i++] = p.receivedAt
        offset += p.bytes.byteLength
      }
      const batch: DecodeBatch = { open: thread.open, packets, bytes, close: thread.close }
      thread.open = []
      thread.packets = []
      thread.close = []
      thread.worker.postMessage(batch, [bytes, packets.buffer])
    }
    const schedule = (thread: DecodeThread) => {
      if (thread.scheduled || thread.inFlight) return
      thread.scheduled = true
      queueMicrotask(() => flush(thread))
    }

    // Outcomes come from our own decode-worker.ts (same build), so the message is not re-validated.
    const onResults = (thread: DecodeThread, results: DecodeResults) => {
      thread.inFlight = false
      flush(thread)
      for (const o of results.outcomes) {
        const entry = streams.get(o.stream)
        if (entry === undefined) continue
        entry.handlers.outcome("rejected" in o ? Result.fail(o.rejected) : Result.succeed(o.decoded), o.receivedAt)
      }
      for (const id of results.closed) {
        const entry = streams.get(id)
        streams.delete(id)
        entry?.drained?.()
      }
    }

    const attach = (thread: DecodeThread): DecodeThread => {
      const worker = thread.worker
      worker.on("message", (results: DecodeResults) => onResults(thread, results))
      worker.on("error", (error) => died(thread, worker, error))
      worker.on("exit", (code) => died(thread, worker, new Error(`decode thread exited with code ${code}`)))
      worker.unref()
      return thread
    }
    const died = (thread: DecodeThread, worker: Worker, cause: unknown) => {
      if (stopping || thread.worker !== worker) return
      worker.removeAllListeners()
      worker.terminate().catch(() => undefined)
      restarts.inc()
      thread.open = []
      thread.packets = []
      thread.close = []
      thread.streams = 0
      thread.inFlight = false
      for (const [id, entry] of streams) {
        if (entry.thread !== thread) continue
        streams.delete(id)
        entry.handlers.failed(cause)
      }
      thread.worker = new Worker(WORKER_URL)
      attach(thread)
    }

    const threads: Array<DecodeThread> = []
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        for (let i = 0; i < count; i++) {
          threads.push(attach({ worker: new Worker(WORKER_URL), streams: 0, open: [], packets: [], close: [], scheduled: false, inFlight: false }))
        }
      }),
      () =>
        Effect.promise(() => {
          stopping = true
          return Promise.all(threads.map((t) => t.worker.terminate()))
        })
    )

    const openOpus: AudioDecodersService["openOpus"] = (options, handlers) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const thread = threads.reduce((best, t) => (t.streams < best.streams ? t : best))
          const id = nextId++
          const entry: StreamEntry = { handlers, thread, drained: undefined }
          streams.set(id, entry)
          thread.streams++
          thread.open.push({ stream: id, options })
          schedule(thread)
          let ended = false
          const end = (drained: () => void) => {
            if (ended) return drained()
            ended = true
            if (!streams.has(id)) return drained() // its thread died (and the thread's count was reset)
            thread.streams--
            entry.drained = drained
            thread.close.push(id)
            schedule(thread)
          }
          const stream: OpusStream = {
            decode: (packet, arrivalMs, receivedAt) => {
              if (ended || !streams.has(id)) return
              thread.packets.push({ stream: id, bytes: packet, arrivalMs, receivedAt })
              schedule(thread)
            },
            end
          }
          return stream
        }),
        (stream) => Effect.sync(() => stream.end(() => undefined))
      )

    return { threads: count, workers: Effect.sync(() => threads.map((t) => t.worker)), openOpus }
  })

/**
 * Opus decoders for the RTP audio path: on the main thread (`AUDIO_DECODE_THREADS=0`, the
 * default: lowest latency), or on that many worker threads. Decoding is the largest part of the
 * per-packet cost, so threads let the audio path use more than one core, for a hop that adds
 * about 0.3 ms per packet when idle and more when the cores are busy.
 */
export class AudioDecoders extends Context.Service<AudioDecoders, AudioDecodersService>()("auralink/AudioDecoders") {
  // The WebAssembly module is compiled at start (it is cached for every later decoder), not while the first stream's packets arrive.
  static readonly layerInline = Layer.effect(AudioDecoders, Effect.as(Effect.promise(() => OpusRtpDecoder.make().then((d) => d.free())), inline))
  static readonly layerThreads = (count: number) => Layer.effect(AudioDecoders, threaded(count))
  static readonly layer = Layer.unwrap(
    Effect.map(AppConfig, ({ audio }) => audio.decodeThreads === 0 ? AudioDecoders.layerInline : AudioDecoders.layerThreads(audio.decodeThreads))
  )
}
