import { Deferred, Duration, Effect, Exit, Fiber, Option, Schema } from "effect"
import { type AiCoreFrame, AiCoreFallback, codecEnum, type FallbackReason, FrameResult } from "../../schemas/aicore.ts"
import type { CircuitBreaker } from "../resilience/circuitBreaker.ts"
import { keepConnected, reconnectBackoff } from "../resilience/reconnect.ts"
import type { AicMetrics } from "./metrics.ts"
import type { AiCoreStream, AiCoreTransport, FrameRequestMessage } from "./transport.ts"

/** Client counters shared by every session of one AI Core (for `/status`). */
export interface AiCoreClientStats {
  sessions: number
  connected: number
  requests: number
  answered: number
  failed: number
  lateResults: number
  invalidResults: number
  reconnects: number
  latencyMsTotal: number
}

export const emptyClientStats = (): AiCoreClientStats => ({
  sessions: 0,
  connected: 0,
  requests: 0,
  answered: 0,
  failed: 0,
  lateResults: 0,
  invalidResults: 0,
  reconnects: 0,
  latencyMsTotal: 0
})

/** One media session's client: one frame's call as an Effect, and the policy its callers wrap it in. */
export interface AiCoreSessionClient {
  readonly sessionId: string
  /**
   * One frame's round trip on the session's stream: its result, or why there is none as a typed
   * error (`overloaded`, `unavailable`, `error`, `invalid_result`, `closed`, `disabled`). No
   * deadline and no breaker of its own (callers add them, see `policy`); interrupting it forgets
   * the frame (a result that comes later is counted as late).
   */
  readonly call: (frame: AiCoreFrame) => Effect.Effect<FrameResult, AiCoreFallback>
  /** What callers wrap `call` in: the per-frame deadline and the shared breaker (none when disabled). */
  readonly policy: AiCorePolicy
  /** Fails what is in flight (`closed`), ends the stream and stops reconnecting. Idempotent. */
  readonly close: Effect.Effect<void>
}

export interface AiCorePolicy {
  readonly deadline: Duration.Duration
  readonly breaker: Option.Option<CircuitBreaker>
}

export interface AiCoreSessionOptions {
  readonly sessionId: string
  readonly transport: AiCoreTransport
  readonly breaker: CircuitBreaker
  readonly metrics: AicMetrics["Service"]
  readonly stats: AiCoreClientStats
  readonly deadlineMs: number
  readonly maxInFlight: number
  readonly reconnectBaseMs: number
  readonly reconnectMaxMs: number
  /** What every request asks of compression (AI_CORE_TARGET_SAVINGS, AI_CORE_QUALITY_LEVEL); empty: the AI Core's own choice. */
  readonly goal: CompressionGoal
}

export interface CompressionGoal {
  readonly targetSavings?: number
  readonly qualityLevel?: number
}

interface Pending {
  readonly frameNumber: number
  readonly stream: AiCoreStream
  readonly payloadCount: number
  readonly sentAt: number
  readonly resume: (effect: Effect.Effect<FrameResult, AiCoreFallback>) => void
}

class StreamEnded extends Schema.TaggedError<StreamEnded>()("StreamEnded", { reason: Schema.String }) {}

// A check, not a decode: proto-loader already gives the decoded shape (camelCase, defaults filled),
// so the message itself is the value once it passes (no copy per frame).
const isFrameResult = Schema.is(FrameResult)
const fallback = (reason: FallbackReason, detail: string) => Effect.fail(new AiCoreFallback({ reason, detail }))

/**
 * The per-session AI Core client. Frames are written to the session's `Compress` stream as they
 * come and matched to results by frame number; up to `maxInFlight` may await results (more fail
 * at once: `overloaded`).
 *
 * A connector fiber keeps the stream open (`keepConnected`): a stream that ends fails its
 * in-flight frames (`unavailable`) and is re-opened, at once if it had delivered results, else
 * after the backoff schedule; while there is no stream, calls fail at once (`unavailable`).
 */
export const makeAiCoreSession = (o: AiCoreSessionOptions): Effect.Effect<AiCoreSessionClient> =>
  Effect.gen(function*() {
    const pending = new Map<number, Pending>()
    let stream: AiCoreStream | undefined
    let delivered = false
    let nextFrame = 0
    let closing = false
    o.stats.sessions++

    /** Ends a pending frame's call (once: it leaves `pending`), with its latency counted. */
    const settle = (p: Pending, answered: boolean, effect: Effect.Effect<FrameResult, AiCoreFallback> | undefined): void => {
      if (!pending.delete(p.frameNumber)) return
      const latencyMs = performance.now() - p.sentAt
      o.metrics.latency(latencyMs)
      o.stats.latencyMsTotal += latencyMs
      if (answered) o.stats.answered++
      else o.stats.failed++
      if (effect !== undefined) p.resume(effect)
    }

    const onResult = (message: unknown): void => {
      if (!isFrameResult(message)) {
        // Without a valid frame number it cannot be matched: that frame meets its caller's deadline.
        o.stats.invalidResults++
        return
      }
      const result: FrameResult = message
      const p = pending.get(result.frameNumber)
      if (p === undefined) {
        o.stats.lateResults++
        return
      }
      delivered = true
      if (!result.success) return settle(p, false, fallback("error", result.error === "" ? "the AI Core reported a failure" : result.error))
      if (result.payload.length !== p.payloadCount) {
        return settle(p, false, fallback("invalid_result", `${result.payload.length} payloads for ${p.payloadCount} packets`))
      }
      settle(p, true, Effect.succeed(result))
    }

    /** The stream `s` ended: its frames in flight fail now (they were sent and will not be answered). */
    const streamEnded = (s: AiCoreStream, reason: string): void => {
      if (stream === s) {
        stream = undefined
        o.stats.connected--
      }
      for (const p of [...pending.values()]) {
        if (p.stream === s) settle(p, false, fallback(closing ? "closed" : "unavailable", reason))
      }
    }

    /** Opens a stream now (synchronously: frames can be written at once; grpc-js holds them until connected). */
    const openStream = (): Deferred.Deferred<string> => {
      const ended = Deferred.makeUnsafe<string>()
      delivered = false
      let s: AiCoreStream | undefined
      // onClosed may run inside open(), before `s` is assigned: a const would still be in its TDZ there.
      // eslint-disable-next-line prefer-const
      s = o.transport.open({
        onResult,
        onClosed: (reason) => {
          if (s !== undefined) streamEnded(s, reason)
          Deferred.doneUnsafe(ended, Exit.succeed(reason))
        }
      })
      if (!Deferred.isDoneUnsafe(ended)) {
        stream = s
        o.stats.connected++
      }
      return ended
    }

    // The first stream is opened before the client is handed out, so a session's first frames find it.
    let prepared: Deferred.Deferred<string> | undefined = openStream()
    /** Runs one stream until it ends; fails (for the backoff) when it never delivered a result. */
    const runStream = Effect.suspend(() => {
      const ended = prepared ?? openStream()
      prepared = undefined
      return Effect.flatMap(Deferred.await(ended), (reason) => delivered ? Effect.void : Effect.fail(new StreamEnded({ reason })))
    })

    const connector = keepConnected(runStream, {
      backoff: reconnectBackoff(o.reconnectBaseMs, o.reconnectMaxMs),
      onFailure: (e, attempt) =>
        attempt === 1 || attempt % 20 === 0
          ? Effect.logWarning(`AI Core stream not established (attempt ${attempt}): ${e.reason}; frames pass through`)
          : Effect.void,
      onEnded: (_, failuresBefore) =>
        Effect.suspend(() => {
          o.stats.reconnects++
          return failuresBefore > 0 ? Effect.logInfo("AI Core stream re-established") : Effect.void
        })
    }).pipe(Effect.annotateLogs({ sessionId: o.sessionId, component: "ai_core" }))
    const connectorFiber = yield* Effect.forkDetach(connector)

    const message = (frameNumber: number, frame: AiCoreFrame): FrameRequestMessage => ({
      sessionId: o.sessionId,
      frameNumber,
      frameType: frame.key ? "FRAME_TYPE_KEY" : "FRAME_TYPE_DELTA",
      codec: codecEnum[frame.codec],
      payload: frame.payload,
      metadata: frame.metadata,
      network: frame.network,
      ...o.goal
    })

    const call = (frame: AiCoreFrame): Effect.Effect<FrameResult, AiCoreFallback> =>
      Effect.callback<FrameResult, AiCoreFallback>((resume) => {
        if (closing) return resume(fallback("closed", "the AI Core client is closed"))
        if (pending.size >= o.maxInFlight) return resume(fallback("overloaded", `${o.maxInFlight} frames already in flight`))
        const s = stream
        if (s === undefined) {
          o.stats.failed++
          return resume(fallback("unavailable", "no stream to the AI Core"))
        }
        const frameNumber = nextFrame
        nextFrame = (nextFrame + 1) >>> 0
        const p: Pending = { frameNumber, stream: s, payloadCount: frame.payload.length, sentAt: performance.now(), resume }
        pending.set(frameNumber, p)
        o.stats.requests++
        s.write(message(frameNumber, frame))
        // Interrupted (the caller's deadline, shutdown): the frame is forgotten; its result, if any, is late.
        return Effect.sync(() => settle(p, false, undefined))
      })

    let closed = false
    const close = Effect.suspend(() => {
      if (closed) return Effect.void
      closed = true
      closing = true
      o.stats.sessions--
      return Fiber.interrupt(connectorFiber).pipe(Effect.andThen(Effect.sync(() => {
        const s = stream
        if (s !== undefined) {
          s.close()
          streamEnded(s, "client closed")
        }
        for (const p of [...pending.values()]) settle(p, false, fallback("closed", "the AI Core client closed"))
      })))
    })

    return {
      sessionId: o.sessionId,
      call,
      policy: { deadline: Duration.millis(o.deadlineMs), breaker: Option.some(o.breaker) },
      close
    }
  })
