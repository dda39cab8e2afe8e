import { Cause, Duration, Effect, Option } from "effect"
import type { AiCoreSessionClient } from "../../layers/AiCore.ts"
import { CircuitOpen } from "../../layers/resilience/circuitBreaker.ts"
import { type AiCoreFrame, AiCoreFallback, type FallbackReason, type FrameResult } from "../../schemas/aicore.ts"

const reasonOf = (error: AiCoreFallback | CircuitOpen | Cause.TimeoutError): FallbackReason => {
  if (error instanceof AiCoreFallback) return error.reason
  if (error instanceof CircuitOpen) return "circuit_open"
  return "timeout"
}

/**
 * One frame's AI Core call in the design card's combinators: the session's `call`, cut off at the
 * deadline (`Effect.timeout`, which interrupts the call), through the shared circuit breaker
 * (`protect`: a timeout counts as a failure), every way of not getting a result narrowed to the
 * fallback reason the frame will carry. Reconnects live below `call` (a `Schedule` in the client);
 * passthrough is the caller's `orElse`.
 */
export const guardedCall = (client: AiCoreSessionClient): (frame: AiCoreFrame) => Effect.Effect<FrameResult, FallbackReason> => {
  const { deadline, breaker } = client.policy
  const timed = Duration.isFinite(deadline)
    ? (frame: AiCoreFrame) => Effect.timeout(client.call(frame), deadline)
    : client.call
  return Option.match(breaker, {
    onNone: () => (frame) => Effect.mapError(timed(frame), reasonOf),
    onSome: (b) => (frame) => Effect.mapError(b.protect(timed(frame)), reasonOf)
  })
}
