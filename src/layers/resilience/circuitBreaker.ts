import { Clock, Duration, Effect, Exit, Schema } from "effect"
import { Gauge, type Registry } from "prom-client"

/** Failed fast: the breaker `name` is open (or its single half-open probe is already running). */
export class CircuitOpen extends Schema.TaggedError<CircuitOpen>()("CircuitOpen", {
  name: Schema.String,
  /** Milliseconds until the breaker lets a probe through (0 while a probe is running). */
  retryInMs: Schema.Number
}) {
  override get message(): string {
    return `circuit breaker ${this.name} is open (probe in ${this.retryInMs} ms)`
  }
}

export type CircuitState = "closed" | "open" | "half_open"

export interface CircuitBreakerOptions {
  readonly name: string
  /** Consecutive failures that open the breaker (>= 1). */
  readonly failureThreshold: number
  /** How long the breaker stays open before it lets one probe through. */
  readonly resetTimeout: Duration.Input
  /** Which failures count (default: every failure; interruptions never count). */
  readonly isFailure?: (error: unknown) => boolean
  /** Called on every transition (for metrics and logs); must not fail. */
  readonly onStateChange?: (next: CircuitState, previous: CircuitState) => Effect.Effect<void>
}

export interface CircuitBreaker {
  readonly name: string
  /**
   * Runs `effect` through the breaker. Closed: runs it, counting consecutive failures (the
   * `failureThreshold`-th opens the breaker). Open: fails at once with `CircuitOpen` until
   * `resetTimeout` has passed, then exactly one caller runs as the probe (half-open) while all
   * others still get `CircuitOpen`; the probe's success closes the breaker, its failure reopens it.
   */
  readonly protect: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | CircuitOpen, R>
  readonly state: Effect.Effect<CircuitState>
  /** Consecutive failures counted while closed. */
  readonly failures: Effect.Effect<number>
}

/** Prometheus encoding of a state for `auralink_circuit_breaker_state`. */
export const stateValue: Record<CircuitState, number> = { closed: 0, half_open: 1, open: 2 }

/**
 * The one circuit breaker combinator every outbound client uses (ASR gateway, AI Core). Time
 * comes from Effect's `Clock`, so `TestClock` drives it in tests. State lives in the returned
 * object (one breaker per downstream), never at module level.
 */
export const makeCircuitBreaker = (options: CircuitBreakerOptions): Effect.Effect<CircuitBreaker> =>
  Effect.sync(() => {
    const threshold = Math.max(1, Math.floor(options.failureThreshold))
    const resetMs = Duration.toMillis(Duration.fromInputUnsafe(options.resetTimeout))
    let state: CircuitState = "closed"
    let failures = 0
    let openedAt = 0
    let probing = false

    const transition = (next: CircuitState): Effect.Effect<void> => {
      const previous = state
      state = next
      return previous === next || options.onStateChange === undefined ? Effect.void : options.onStateChange(next, previous)
    }

    /** Decides, atomically (no yield between read and write), whether this caller may run. */
    const admit = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      if (state === "closed") return Effect.succeed(false)
      if (state === "open" && now - openedAt >= resetMs && !probing) {
        probing = true
        return Effect.as(transition("half_open"), true)
      }
      const retryInMs = state === "open" ? Math.max(0, openedAt + resetMs - now) : 0
      return Effect.fail(new CircuitOpen({ name: options.name, retryInMs }))
    })

    const open = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      openedAt = now
      failures = 0
      return transition("open")
    })

    const record = (isProbe: boolean, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> => {
      if (isProbe) probing = false
      if (Exit.isSuccess(exit)) {
        failures = 0
        return transition("closed")
      }
      const error = Exit.findErrorOption(exit)
      const counted = !Exit.hasInterrupts(exit) &&
        (error._tag === "None" || options.isFailure === undefined || options.isFailure(error.value))
      if (!counted) {
        // An interrupted or ignored probe proves nothing: back to open, the next caller may probe.
        return isProbe ? transition("open") : Effect.void
      }
      if (isProbe) return open
      failures += 1
      return failures >= threshold && state === "closed" ? open : Effect.void
    }

    const protect = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | CircuitOpen, R> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(admit, (isProbe) =>
          restore(effect).pipe(Effect.onExit((exit) => record(isProbe, exit)))))

    return {
      name: options.name,
      protect,
      state: Effect.sync(() => state),
      failures: Effect.sync(() => failures)
    }
  })

/**
 * The `auralink_circuit_breaker_state{name}` gauge on `registry` (0 closed, 1 half-open, 2
 * open), created once per registry; returns an `onStateChange` hook for `name` (and sets it to
 * closed now). Several breakers share the gauge through its `name` label.
 */
export const breakerStateGauge = (registry: Registry, name: string): CircuitBreakerOptions["onStateChange"] & {} => {
  const existing = registry.getSingleMetric("auralink_circuit_breaker_state")
  const gauge = existing instanceof Gauge
    ? existing
    : new Gauge({
      name: "auralink_circuit_breaker_state",
      help: "Circuit breaker state by breaker name: 0 closed, 1 half-open, 2 open",
      labelNames: ["name"] as const,
      registers: [registry]
    })
  gauge.set({ name }, 0)
  return (next) => Effect.sync(() => gauge.set({ name }, stateValue[next]))
}
