import { Duration, Effect, Layer } from "effect"
import { AppConfig } from "../../layers/Config.ts"
import { SessionMetrics } from "../../layers/sessions/metrics.ts"
import { Sessions } from "../../layers/SessionStore.ts"
import { announce } from "./transition.ts"

const BATCH = 500

/**
 * One sweep: every pending/active session whose idle deadline (`expires_at`) has passed becomes
 * expired, in batches; rows locked by another sweeper are skipped (that one expires them), so
 * several instances may sweep at once. Returns how many this run expired.
 */
export const sweepOnce = Effect.gen(function*() {
  const sessions = yield* Sessions
  let total = 0
  while (true) {
    const done = yield* sessions.expireDue(BATCH, { actor: "sweeper", reason: "idle timeout" })
    yield* Effect.forEach(done, ({ from, session }) => announce(from, session), { discard: true })
    total += done.length
    if (done.length < BATCH) break
  }
  yield* (yield* SessionMetrics).sweep(total)
  return total
}).pipe(Effect.withSpan("sessions.sweep"))

/** Runs `sweepOnce` every SESSION_SWEEP_INTERVAL_MS in the layer's scope; a failed run is logged and the next one follows. */
export const SweeperLive = Layer.effectDiscard(Effect.gen(function*() {
  const { sessions } = yield* AppConfig
  const interval = Duration.millis(sessions.sweepIntervalMs)
  yield* Effect.sleep(interval).pipe(
    Effect.andThen(sweepOnce),
    Effect.catchCause((cause) => Effect.logWarning("session sweep failed", cause)),
    Effect.forever,
    Effect.forkScoped
  )
}))
