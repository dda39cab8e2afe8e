import { Array as Arr, type Cause, Effect, Queue, Schedule, Scheduler, type Scope, Stream } from "effect"
import { handOverAtOnce } from "../media/scheduler.ts"
import type { AicMode } from "../../config/settings.ts"
import type { AicMetrics } from "../../layers/aicore/metrics.ts"
import type { AiCoreSessionClient } from "../../layers/AiCore.ts"
import { plainView, type RtpParseError, slabAllocator } from "../../media/rtp.ts"
import type { FallbackReason, FrameResult, VideoCodec } from "../../schemas/aicore.ts"
import { answeredVerdict, ElementCache, fallbackVerdict, type FrameVerdict, writePacket } from "./annotate.ts"
import { guardedCall } from "./compress.ts"
import type { RtpSink, RtpSource } from "./io.ts"
import { FRAME_HOLD_MS, type FrameUnit, Lanes, type Unit } from "./lanes.ts"

/**
 * Batches (one per chunk of input) whose frames may await the AI Core at once. Each waits at most
 * the deadline; while all are waiting, input gathers in the input queue and makes the next batch
 * larger, so this bounds fibers, not throughput.
 */
const BATCHES_IN_FLIGHT = 16

/** How often frames being collected are checked against FRAME_HOLD_MS. */
const HOLD_CHECK_MS = FRAME_HOLD_MS / 4

/** Marks the hold check in the input queue. */
const HOLD_CHECK = Symbol("hold check")

export interface AicPipelineOptions {
  /** The session's AI Core client (shared by the session's pipelines). */
  readonly ai: AiCoreSessionClient
  readonly metrics: AicMetrics["Service"]
  readonly mode: AicMode
  /** RFC 8285 id of the AIC element. */
  readonly extensionId: number
  /** Payload type -> codec; packets of other payload types are forwarded untouched, outside frames. */
  readonly codecs: ReadonlyMap<number, VideoCodec>
  /** Packets buffered between the source and the pipeline (beyond it, packets are dropped and counted). */
  readonly queueCapacity: number
}

export interface AicPipelineStats {
  readonly received: number
  readonly forwarded: number
  /** Not RTP (parse error): counted by reason, not forwarded. */
  readonly malformed: number
  /** Dropped because the input buffer was full (the pipeline and its sink could not keep up). */
  readonly overflow: number
  readonly frames: number
  /** Frames the AI Core answered with a result, and those it made smaller. */
  readonly answered: number
  readonly compressed: number
  readonly fallbacks: Readonly<Partial<Record<FallbackReason, number>>>
  /** Valid RTP whose payload did not classify (still assembled and forwarded). */
  readonly payloadRejects: number
  /** Forwarded as they came, outside any frame: unknown payload type, late or duplicate packets. */
  readonly unframed: number
  /** The last malformed packet's error, for logs and tests. */
  readonly lastParseError: RtpParseError | undefined
}

/** One source's running pipeline. */
export interface AicPipeline {
  /**
   * Processed packets, per SSRC in the order they came; ends when the source has ended and every
   * frame is out. Runs once: the pipeline works while `output` is run, and interrupting it stops it.
   */
  readonly output: Stream.Stream<Uint8Array>
  readonly stats: () => AicPipelineStats
}

/**
 * The AIC compression pipeline over one RTP source (a mediasoup consumer: one SSRC; a UDP socket:
 * any number), as an Effect Stream:
 *
 *     source -> input queue -> chunks -> Lanes (parse, classify, assemble frames; synchronous per chunk)
 *       -> batches -> per frame `guardedCall` (deadline, breaker) orElse passthrough, BATCHES_IN_FLIGHT
 *          batches at once, order kept -> AIC header extension (and, in `replace` mode, the AI Core's
 *          payloads) -> output
 *
 * Cost per packet: the steps up to the AI Core are plain synchronous code over a chunk (a fiber or
 * an Effect per packet would cost more than the steps themselves); there is one fiber per batch,
 * a few per frame call (the deadline's race), and the sink wakes once per batch.
 *
 * Order and loss: batches leave in the order they came, and within a batch the units do, so every
 * SSRC's packets leave in arrival order whatever order the AI Core answers in, and no frame waits
 * longer than the deadline. Every valid RTP packet comes out: a frame the AI Core does not answer
 * in time (or at all: breaker open, overloaded, disconnected, disabled) goes out with its own
 * payload and the fallback flag. Malformed packets (not RTP) are counted by reason and dropped;
 * packets beyond the input buffer are dropped and counted (`overflow`).
 */
export const makeAicPipeline = (source: RtpSource, o: AicPipelineOptions): Effect.Effect<AicPipeline, never, Scope.Scope> =>
  Effect.gen(function*() {
    const input = yield* Queue.bounded<Uint8Array | typeof HOLD_CHECK, Cause.Done>(Math.max(1, Math.floor(o.queueCapacity)))
    const lanes = new Lanes(o.codecs, o.metrics)
    const elements = new ElementCache()
    const alloc = slabAllocator()
    const call = guardedCall(o.ai)
    const fallbacks: Partial<Record<FallbackReason, number>> = {}
    const s = { received: 0, forwarded: 0, overflow: 0, answered: 0, compressed: 0 }

    const unsubscribe = source.subscribe({
      push: (packet) => {
        s.received++
        o.metrics.received(packet.byteLength)
        if (!Queue.offerUnsafe(input, plainView(packet))) {
          s.overflow++
          o.metrics.dropped("output_overflow")
        }
      },
      end: () => void Queue.endUnsafe(input)
    })
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        unsubscribe()
        Queue.endUnsafe(input)
      })
    )
    // Frames being collected when their source pauses are released by this check; it wakes the
    // stream only while some frame is being collected.
    yield* Effect.suspend(() => lanes.collecting() ? Queue.offer(input, HOLD_CHECK) : Effect.void).pipe(
      Effect.repeat(Schedule.spaced(HOLD_CHECK_MS)),
      Effect.forkScoped
    )

    /** The synchronous step: one chunk of input -> one batch of units. */
    const assemble = (chunk: ReadonlyArray<Uint8Array | typeof HOLD_CHECK>): Array<Unit> => {
      const out: Array<Unit> = []
      const now = performance.now()
      for (const item of chunk) {
        if (item === HOLD_CHECK) lanes.release(now, out)
        else lanes.push(item, now, out)
      }
      return out
    }

    const verdict = (unit: FrameUnit, result: FrameResult): FrameVerdict => {
      const v = answeredVerdict(result, unit.originalBytes, unit.frame.key, o.mode, elements)
      s.answered++
      if (v.compressed) {
        s.compressed++
        o.metrics.compressed(unit.originalBytes, v.compressedBytes)
      }
      return v
    }
    const passthrough = (unit: FrameUnit, reason: FallbackReason): FrameVerdict => {
      fallbacks[reason] = (fallbacks[reason] ?? 0) + 1
      o.metrics.fallback(reason)
      return fallbackVerdict(unit.frame.key)
    }
    /** A frame's verdict: the AI Core's answer, or passthrough when there is none. */
    const judge = (unit: FrameUnit): Effect.Effect<FrameVerdict> =>
      call(unit.request).pipe(Effect.match({ onSuccess: (result) => verdict(unit, result), onFailure: (reason) => passthrough(unit, reason) }))

    /** A batch's packets, in order, once each of its frames has its verdict. */
    const complete = (batch: ReadonlyArray<Unit>): Effect.Effect<ReadonlyArray<Uint8Array>> => {
      const frames: Array<FrameUnit> = []
      for (const unit of batch) if (!(unit instanceof Uint8Array)) frames.push(unit)
      if (frames.length === 0) return Effect.sync(() => emit(batch, []))
      const verdicts = frames.length === 1 ? Effect.map(judge(frames[0]!), (v) => [v]) : Effect.forEach(frames, judge, { concurrency: "unbounded" })
      return Effect.map(verdicts, (vs) => emit(batch, vs))
    }

    /** Writes each frame's verdict on its packets; counts what leaves. */
    const emit = (batch: ReadonlyArray<Unit>, verdicts: ReadonlyArray<FrameVerdict>): Array<Uint8Array> => {
      const out: Array<Uint8Array> = []
      let bytes = 0
      let f = 0
      for (const unit of batch) {
        if (unit instanceof Uint8Array) {
          out.push(unit)
          bytes += unit.byteLength
          continue
        }
        const v = verdicts[f++]!
        const packets = unit.frame.packets
        for (let i = 0; i < packets.length; i++) {
          const packet = writePacket(packets[i]!, o.extensionId, v, i, alloc)
          out.push(packet)
          bytes += packet.byteLength
        }
        for (const packet of unit.after) {
          out.push(packet)
          bytes += packet.byteLength
        }
      }
      s.forwarded += out.length
      o.metrics.forwarded(out.length, bytes)
      return out
    }

    const batches = Stream.fromQueue(input).pipe(
      Stream.mapArray((chunk) => [assemble(chunk)] as const),
      // The source ended: frames still being collected go on as they are.
      Stream.concat(Stream.sync(() => {
        const out: Array<Unit> = []
        lanes.end(out)
        return out
      })),
      Stream.filter((batch) => batch.length > 0)
    )
    const output = batches.pipe(
      Stream.mapEffect(complete, { concurrency: BATCHES_IN_FLIGHT }),
      Stream.filter(Arr.isReadonlyArrayNonEmpty),
      // Each batch's packets stay one chunk: the sink wakes once per batch.
      Stream.flattenArray,
      Stream.provideService(Scheduler.Scheduler, handOverAtOnce)
    )

    return {
      output,
      stats: () => {
        const c = lanes.counters
        return {
          ...s,
          malformed: c.malformed,
          frames: c.frames,
          payloadRejects: c.payloadRejects,
          unframed: c.unframed,
          lastParseError: c.lastParseError,
          fallbacks: { ...fallbacks }
        }
      }
    }
  })

/** Runs a pipeline's output into a sink, one batch at a time, until the output ends. */
export const runToSink = (pipeline: AicPipeline, sink: RtpSink): Effect.Effect<void> =>
  Stream.runForEachArray(pipeline.output, (packets) => Effect.sync(() => sink.send(packets))).pipe(
    Effect.provideService(Scheduler.Scheduler, handOverAtOnce)
  )
