import { Deferred, Effect, Exit, Fiber, Schema } from "effect"
import { type AiCoreFrame, AiCoreFallback, codecEnum, type FallbackReason, FrameResult } from "../../schemas/aicore.ts"
import type { CircuitBreaker, CircuitOutcome, CircuitPermit } from "../resilience/circuitBreaker.ts"
import { keepConnected, reconnectBackoff } from "../resilience/reconnect.ts"
import type { AicMetrics } from "./metrics.ts"
import type { AiCoreStream, AiCoreTransport, FrameRequestMessage } from "./transport.ts"

/** How one frame's AI Core call ended (plain data: the hot path builds no Error per frame). */
export type AiCoreOutcome =
  | { readonly _tag: "Answered"; readonly result: FrameResult; readonly latencyMs: number }
  | { readonly _tag: "Fallback"; readonly reason: FallbackReason; readonly detail: string; readonly latencyMs: number }

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

/** One media session's client: frames in, outcomes out, never later than the deadline. */
export interface AiCoreSessionClient {
  readonly sessionId: string
  /**
   * Sends one frame; `done` is called exactly once: with the result, or with a fallback reason at
   * once (breaker open, too many in flight, no stream: before `submit` returns) or when the
   * deadline passes. Never throws.
   */
  readonly submit: (frame: AiCoreFrame, done: (outcome: AiCoreOutcome) => void) => void
  /** `submit` as an Effect: the result, or the fallback as a typed error. */
  readonly compress: (frame: AiCoreFrame) => Effect.Effect<FrameResult, AiCoreFallback>
  /** Settles what is in flight (`closed`), ends the stream and stops reconnecting. Idempotent. */
  readonly close: Effect.Effect<void>
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
}

interface Pending {
  readonly frameNumber: number
  readonly permit: CircuitPermit
  readonly stream: AiCoreStream
  readonly payloadCount: number
  readonly sentAt: number
  readonly deadline: number
  readonly done: (outcome: AiCoreOutcome) => void
  settled: boolean
}

class StreamEnded extends Schema.TaggedError<StreamEnded>()("StreamEnded", { reason: Schema.String }) {}

// A check, not a decode: proto-loader already gives the decoded shape (camelCase, defaults filled),
// so the message itself is the value once it passes (no copy per frame).
const isFrameResult = Schema.is(FrameResult)
const fallback = (reason: FallbackReason, detail: string, latencyMs = 0): AiCoreOutcome => ({ _tag: "Fallback", reason, detail, latencyMs })
const breakerOutcome = (reason: FallbackReason): CircuitOutcome => reason === "closed" ? "ignored" : "failure"

/**
 * The per-session AI Core client. Frames are written to the session's `Compress` stream as they
 * come and matched to results by frame number; up to `maxInFlight` may await results (more
 * bypass: `overloaded`). Every frame passes the shared circuit breaker's synchronous admission.
 *
 * Deadlines without a timer per frame: all frames get the same deadline, so the oldest pending
 * frame always expires first; one timer per session is armed for it and, when it fires, expires
 * every frame whose deadline has passed and re-arms for the next.
 *
 * A connector fiber keeps the stream open (`keepConnected`): a stream that ends fails its
 * in-flight frames (`unavailable`, counted by the breaker) and is re-opened, at once if it had
 * delivered results, else after the backoff schedule; while there is no stream, frames fall back at once.
 */
export const makeAiCoreSession = (o: AiCoreSessionOptions): Effect.Effect<AiCoreSessionClient> =>
  Effect.gen(function*() {
    const pending = new Map<number, Pending>()
    // Pending frames in send order (= deadline order); settled ones leave from the head, and their
    // slots are cleared at once so a settled frame (and the packets its callback holds) dies young.
    let fifo: Array<Pending | undefined> = []
    let head = 0
    let timer: ReturnType<typeof setTimeout> | undefined
    let stream: AiCoreStream | undefined
    let delivered = false
    let nextFrame = 0
    let closing = false
    o.stats.sessions++

    const advance = (): void => {
      while (head < fifo.length && fifo[head]!.settled) fifo[head++] = undefined
      if (head === fifo.length) {
        fifo = []
        head = 0
      } else if (head > 1024 && head * 2 > fifo.length) {
        fifo = fifo.slice(head)
        head = 0
      }
    }

    const settle = (p: Pending, outcome: AiCoreOutcome): void => {
      if (p.settled) return
      p.settled = true
      pending.delete(p.frameNumber)
      advance()
      o.breaker.release(p.permit, outcome._tag === "Answered" ? "success" : breakerOutcome(outcome.reason))
      o.metrics.latency(outcome.latencyMs)
      o.stats.latencyMsTotal += outcome.latencyMs
      if (outcome._tag === "Answered") o.stats.answered++
      else o.stats.failed++
      p.done(outcome)
    }

    const arm = (): void => {
      if (timer !== undefined || head >= fifo.length) return
      timer = setTimeout(expire, Math.max(1, Math.ceil(fifo[head]!.deadline - performance.now())))
      timer.unref()
    }

    function expire(): void {
      timer = undefined
      const now = performance.now()
      // Settling the head advances it; a timer may fire a fraction of a millisecond early
      // (libuv's cached loop time): then it is re-armed.
      while (head < fifo.length) {
        const p = fifo[head]!
        if (p.deadline > now + 0.1) break
        settle(p, fallback("timeout", `no result within ${o.deadlineMs} ms`, now - p.sentAt))
      }
      arm()
    }

    const onResult = (message: unknown): void => {
      if (!isFrameResult(message)) {
        // Without a valid frame number it cannot be matched: that frame meets its deadline.
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
      const latencyMs = performance.now() - p.sentAt
      if (!result.success) return settle(p, fallback("error", result.error === "" ? "the AI Core reported a failure" : result.error, latencyMs))
      if (result.payload.length !== p.payloadCount) {
        return settle(p, fallback("invalid_result", `${result.payload.length} payloads for ${p.payloadCount} packets`, latencyMs))
      }
      settle(p, { _tag: "Answered", result, latencyMs })
    }

    /** The stream `s` ended: its frames in flight fail now (they were sent and will not be answered). */
    const streamEnded = (s: AiCoreStream, reason: string): void => {
      if (stream === s) {
        stream = undefined
        o.stats.connected--
      }
      const now = performance.now()
      for (const p of [...pending.values()]) {
        if (p.stream === s) settle(p, fallback(closing ? "closed" : "unavailable", reason, now - p.sentAt))
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
      network: frame.network
    })

    const submit = (frame: AiCoreFrame, done: (outcome: AiCoreOutcome) => void): void => {
      if (closing) return done(fallback("closed", "the AI Core client is closed"))
      if (pending.size >= o.maxInFlight) return done(fallback("overloaded", `${o.maxInFlight} frames already in flight`))
      const permit = o.breaker.tryAcquire()
      if (permit._tag === "Rejected") return done(fallback("circuit_open", `circuit breaker open (probe in ${permit.retryInMs} ms)`))
      const s = stream
      if (s === undefined) {
        o.breaker.release(permit, "failure")
        o.stats.failed++
        return done(fallback("unavailable", "no stream to the AI Core"))
      }
      const frameNumber = nextFrame
      nextFrame = (nextFrame + 1) >>> 0
      const sentAt = performance.now()
      const p: Pending = { frameNumber, permit, stream: s, payloadCount: frame.payload.length, sentAt, deadline: sentAt + o.deadlineMs, done, settled: false }
      pending.set(frameNumber, p)
      fifo.push(p)
      o.stats.requests++
      arm()
      s.write(message(frameNumber, frame))
    }

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
        if (timer !== undefined) clearTimeout(timer)
        timer = undefined
        const now = performance.now()
        for (const p of [...pending.values()]) settle(p, fallback("closed", "the AI Core client closed", now - p.sentAt))
      })))
    })

    return {
      sessionId: o.sessionId,
      submit,
      compress: (frame) =>
        Effect.callback<FrameResult, AiCoreFallback>((resume) =>
          submit(frame, (outcome) =>
            resume(
              outcome._tag === "Answered"
                ? Effect.succeed(outcome.result)
                : Effect.fail(new AiCoreFallback({ reason: outcome.reason, detail: outcome.detail }))
            ))
        ),
      close
    }
  })
