import { type Cause, Effect, Queue, Result, type Scope, Stream } from "effect"
import type { AicMode } from "../../config/settings.ts"
import type { AicMetrics } from "../../layers/aicore/metrics.ts"
import type { AiCoreOutcome, AiCoreSessionClient } from "../../layers/AiCore.ts"
import { classifyPayload, type PacketClass } from "../../media/classify.ts"
import { type AssembledFrame, FrameAssembler } from "../../media/frames.ts"
import { parseRtp, plainView, type RtpPacket, type RtpParseError, slabAllocator } from "../../media/rtp.ts"
import type { FallbackReason, VideoCodec } from "../../schemas/aicore.ts"
import { answeredVerdict, ElementCache, fallbackVerdict, type FrameVerdict, writePacket } from "./annotate.ts"
import type { RtpSink, RtpSource } from "./io.ts"
import { NetworkEstimator } from "./network.ts"

/** RTP clock rate of every video codec here (RFC 6184, 7798, 7741, 9628). */
const VIDEO_CLOCK_RATE = 90_000

/**
 * A frame still being collected this long after its first packet goes on as it is: its tail was
 * lost and no later frame came to close it (the source paused or stopped). Longer than a sender's
 * pacing spreads one frame (a frame interval or two), so complete frames never hit it.
 */
const FRAME_HOLD_MS = 100

export interface AicPipelineOptions {
  /** The session's AI Core client (shared by the session's pipelines). */
  readonly ai: AiCoreSessionClient
  readonly metrics: AicMetrics["Service"]
  readonly mode: AicMode
  /** RFC 8285 id of the AIC element. */
  readonly extensionId: number
  /** Payload type -> codec; packets of other payload types are forwarded untouched, outside frames. */
  readonly codecs: ReadonlyMap<number, VideoCodec>
  /** Packets buffered between the pipeline and its sink (beyond it, packets are dropped and counted). */
  readonly queueCapacity: number
}

export interface AicPipelineStats {
  readonly received: number
  readonly forwarded: number
  /** Not RTP (parse error): counted by reason, not forwarded. */
  readonly malformed: number
  /** Dropped because the output buffer was full (the sink could not keep up). */
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
  /** Processed packets, per SSRC in the order they came; ends when the source has ended and every frame is out. */
  readonly output: Stream.Stream<Uint8Array>
  readonly stats: () => AicPipelineStats
}

/** A slot in an SSRC's output order: a frame (ready once the AI Core step is done) or a packet passed through. */
interface Entry {
  readonly timestamp: number
  out: ReadonlyArray<Uint8Array> | undefined
}

/** One SSRC: its output order and its network measurements. */
interface Lane {
  readonly network: NetworkEstimator
  fifo: Array<Entry | undefined>
  head: number
  /** The slot reserved for the frame the assembler is still collecting, and when its first packet came. */
  assembling: Entry | undefined
  assemblingSince: number
}

const unclassified = (codec: VideoCodec): PacketClass => ({ codec, start: false, key: false, nalTypes: [] })

/**
 * The AIC compression pipeline over one RTP source (a mediasoup consumer: one SSRC; a UDP socket:
 * any number): source -> parse -> classify and assemble frames -> AI Core -> AIC header extension
 * (and, in `replace` mode, the AI Core's payloads) -> bounded buffer -> `output`, an Effect Stream
 * the sink drains.
 *
 * Cost per packet: the steps up to the AI Core are synchronous and run in the source's callback
 * (a hop through a queue and a fiber per packet would cost more than the steps themselves); the AI
 * Core client settles frames in its callbacks; what is ready is handed to `output` once per turn
 * of the event loop (a microtask), so the sink's fiber wakes once per batch. No fiber or timer per
 * packet or frame.
 *
 * Order and loss: each SSRC has a FIFO of slots in arrival order (a frame's slot is reserved at
 * its first packet); a slot leaves only when it and every slot before it are done, so frames
 * come out in order whatever order the AI Core answers in, and no later than the AI Core
 * deadline. Every valid RTP packet comes out: a frame the AI Core does not answer in time (or
 * at all: breaker open, overloaded, disconnected, disabled) goes out with its own payload and
 * the fallback flag. Malformed packets (not RTP) are counted by reason and not forwarded.
 */
export const makeAicPipeline = (source: RtpSource, o: AicPipelineOptions): Effect.Effect<AicPipeline, never, Scope.Scope> =>
  Effect.gen(function*() {
    const output = yield* Queue.bounded<Uint8Array, Cause.Done>(Math.max(1, Math.floor(o.queueCapacity)))
    const assembler = new FrameAssembler<RtpPacket>()
    const elements = new ElementCache()
    const alloc = slabAllocator()
    const lanes = new Map<number, Lane>()
    const fallbacks: Partial<Record<FallbackReason, number>> = {}
    const s = {
      received: 0,
      forwarded: 0,
      malformed: 0,
      overflow: 0,
      frames: 0,
      answered: 0,
      compressed: 0,
      payloadRejects: 0,
      unframed: 0
    }
    let lastParseError: RtpParseError | undefined
    let pendingOut: Array<Uint8Array> = []
    let pendingOutBytes = 0
    let flushScheduled = false
    let outstanding = 0
    let inputDone = false
    let closed = false
    let holdTimer: ReturnType<typeof setTimeout> | undefined

    const laneOf = (ssrc: number): Lane => {
      let lane = lanes.get(ssrc)
      if (lane === undefined) {
        lane = { network: new NetworkEstimator(VIDEO_CLOCK_RATE), fifo: [], head: 0, assembling: undefined, assemblingSince: 0 }
        lanes.set(ssrc, lane)
      }
      return lane
    }

    const reserve = (lane: Lane, timestamp: number): Entry => {
      const entry: Entry = { timestamp, out: undefined }
      lane.fifo.push(entry)
      return entry
    }

    /** Moves the lane's leading done slots to the output batch. */
    const drain = (lane: Lane): void => {
      const fifo = lane.fifo
      while (lane.head < fifo.length) {
        const out = fifo[lane.head]!.out
        if (out === undefined) break
        for (const packet of out) {
          pendingOut.push(packet)
          pendingOutBytes += packet.byteLength
        }
        fifo[lane.head] = undefined
        lane.head++
      }
      if (lane.head === fifo.length) {
        lane.fifo = []
        lane.head = 0
      } else if (lane.head > 256 && lane.head * 2 > fifo.length) {
        lane.fifo = fifo.slice(lane.head)
        lane.head = 0
      }
    }

    const flush = (): void => {
      flushScheduled = false
      if (pendingOut.length === 0 || closed) return
      const batch = pendingOut
      let bytes = pendingOutBytes
      pendingOut = []
      pendingOutBytes = 0
      // What the queue refuses is lost: the sink fell behind by more than the output buffer.
      const refused = Queue.offerAllUnsafe(output, batch)
      for (const packet of refused) {
        bytes -= packet.byteLength
        o.metrics.dropped("output_overflow")
      }
      s.forwarded += batch.length - refused.length
      s.overflow += refused.length
      o.metrics.forwarded(batch.length - refused.length, bytes)
    }

    /** Hands what is ready to `output` at the end of this turn (one batch, one wake of the sink). */
    const scheduleFlush = (): void => {
      if (flushScheduled || pendingOut.length === 0) return
      flushScheduled = true
      queueMicrotask(flush)
    }

    const finishIfDone = (): void => {
      // After the last batch is handed over (a microtask queued later runs later).
      if (inputDone && outstanding === 0) queueMicrotask(() => void Queue.endUnsafe(output))
    }

    const complete = (lane: Lane, entry: Entry, frame: AssembledFrame<RtpPacket>, originalBytes: number, outcome: AiCoreOutcome): void => {
      outstanding--
      let verdict: FrameVerdict
      if (outcome._tag === "Answered") {
        verdict = answeredVerdict(outcome.result, originalBytes, frame.key, o.mode, elements)
        s.answered++
        if (verdict.compressed) {
          s.compressed++
          o.metrics.compressed(originalBytes, verdict.compressedBytes)
        }
      } else {
        verdict = fallbackVerdict(frame.key)
        fallbacks[outcome.reason] = (fallbacks[outcome.reason] ?? 0) + 1
        o.metrics.fallback(outcome.reason)
      }
      const packets = frame.packets
      const out = new Array<Uint8Array>(packets.length)
      for (let i = 0; i < packets.length; i++) out[i] = writePacket(packets[i]!, o.extensionId, verdict, i, alloc)
      entry.out = out
      drain(lane)
      scheduleFlush()
      finishIfDone()
    }

    /** A frame the assembler finished: fills its slot (reserved at its first packet) and asks the AI Core. */
    const frameDone = (lane: Lane, frame: AssembledFrame<RtpPacket>, codec: VideoCodec): void => {
      let entry = lane.assembling
      if (entry !== undefined && entry.timestamp === frame.timestamp) lane.assembling = undefined
      else entry = reserve(lane, frame.timestamp)
      lane.network.loss(frame.lost + frame.gapBefore)
      const packets = frame.packets
      const payload = new Array<Uint8Array>(packets.length)
      let originalBytes = 0
      for (let i = 0; i < packets.length; i++) {
        payload[i] = packets[i]!.payload
        originalBytes += packets[i]!.payload.byteLength
      }
      s.frames++
      o.metrics.frame(originalBytes)
      outstanding++
      const first = packets[0]!
      const slot = entry
      o.ai.submit({
        key: frame.key,
        codec,
        payload,
        metadata: {
          ssrc: frame.ssrc,
          payloadType: first.payloadType,
          rtpTimestamp: frame.timestamp,
          firstSequence: frame.firstSeq,
          lastSequence: frame.lastSeq,
          packetCount: packets.length,
          lostPackets: frame.lost,
          complete: frame.complete
        },
        network: lane.network.snapshot()
      }, (outcome) => complete(lane, slot, frame, originalBytes, outcome))
    }

    const passThrough = (lane: Lane, bytes: Uint8Array): void => {
      s.unframed++
      lane.fifo.push({ timestamp: -1, out: [bytes] })
    }

    const processPacket = (bytes: Uint8Array, now: number): void => {
      const parsed = parseRtp(bytes)
      if (Result.isFailure(parsed)) {
        s.malformed++
        lastParseError = parsed.failure
        o.metrics.dropped(parsed.failure.reason)
        return
      }
      const packet = parsed.success
      const lane = laneOf(packet.ssrc)
      lane.network.packet(bytes.byteLength, packet.timestamp, now)
      const codec = o.codecs.get(packet.payloadType)
      if (codec === undefined) {
        passThrough(lane, bytes)
        return drain(lane)
      }
      const classified = classifyPayload(codec, packet.payload)
      let cls: PacketClass
      if (Result.isSuccess(classified)) {
        cls = classified.success
      } else {
        s.payloadRejects++
        o.metrics.payloadRejected()
        cls = unclassified(codec)
      }
      const frames = assembler.push(packet, cls)
      for (const frame of frames) frameDone(lane, frame, codec)
      if (assembler.lastDropped !== undefined) {
        passThrough(lane, bytes)
      } else if (!packet.marker && lane.assembling === undefined) {
        lane.assembling = reserve(lane, packet.timestamp)
        lane.assemblingSince = now
        if (holdTimer === undefined) armHold()
      }
      drain(lane)
    }

    /** One timer per pipeline, armed only while some frame is being collected. */
    const armHold = (): void => {
      holdTimer = setTimeout(releaseHeld, FRAME_HOLD_MS)
      holdTimer.unref()
    }

    /** Frames collected for longer than FRAME_HOLD_MS go on incomplete. */
    function releaseHeld(): void {
      holdTimer = undefined
      if (closed || inputDone) return
      const now = performance.now()
      let collecting = false
      for (const [ssrc, lane] of lanes) {
        if (lane.assembling !== undefined && now - lane.assemblingSince >= FRAME_HOLD_MS) {
          for (const frame of assembler.flush(ssrc)) {
            const codec = o.codecs.get(frame.packets[0]!.payloadType)
            if (codec !== undefined) frameDone(lane, frame, codec)
          }
          drain(lane)
        }
        if (lane.assembling !== undefined) collecting = true
      }
      scheduleFlush()
      if (collecting) armHold()
    }

    /** The source ended: frames still being collected go to the AI Core as they are. */
    const endOfInput = (): void => {
      if (inputDone || closed) return
      for (const frame of assembler.flush()) {
        const codec = o.codecs.get(frame.packets[0]!.payloadType)
        if (codec !== undefined) frameDone(laneOf(frame.ssrc), frame, codec)
      }
      for (const lane of lanes.values()) drain(lane)
      inputDone = true
      scheduleFlush()
      finishIfDone()
    }

    const unsubscribe = source.subscribe({
      push: (packet) => {
        if (inputDone || closed) return
        s.received++
        o.metrics.received(packet.byteLength)
        processPacket(plainView(packet), performance.now())
        scheduleFlush()
      },
      end: endOfInput
    })
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        if (holdTimer !== undefined) clearTimeout(holdTimer)
        unsubscribe()
        Queue.endUnsafe(output)
      })
    )

    return {
      output: Stream.fromQueue(output),
      stats: () => ({ ...s, fallbacks: { ...fallbacks }, lastParseError })
    }
  })

/** Runs a pipeline's output into a sink, one batch at a time, until the output ends. */
export const runToSink = (pipeline: AicPipeline, sink: RtpSink): Effect.Effect<void> =>
  Stream.runForEachArray(pipeline.output, (packets) => Effect.sync(() => sink.send(packets)))
