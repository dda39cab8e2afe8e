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

/** A call admitted by `tryAcquire`. */
export interface CircuitPermit {
  readonly _tag: "Admitted"
  readonly probe: boolean
}
/** A call `tryAcquire` turned away (plain data: no Error is built on the hot path). */
export interface CircuitRejected {
  readonly _tag: "Rejected"
  readonly retryInMs: number
}
/** How an admitted call ended: `ignored` proves nothing either way (like an interruption). */
export type CircuitOutcome = "success" | "failure" | "ignored"

const admitted: CircuitPermit = { _tag: "Admitted", probe: false }
const admittedProbe: CircuitPermit = { _tag: "Admitted", probe: true }
const CLOSED: readonly [CircuitPermit, undefined] = [admitted, undefined]

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
  /**
   * `protect` without an Effect per call, for hot paths whose calls settle in callbacks (the AI
   * Core client, per video frame): admits the caller (a permit; `probe` marks the half-open probe)
   * or rejects it, with the same rules and state as `protect`. Every permit must be settled with
   * exactly one `release`. `onStateChange` then runs on a fiber of its own.
   */
  readonly tryAcquire: () => CircuitPermit | CircuitRejected
  readonly release: (permit: CircuitPermit, outcome: CircuitOutcome) => void
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
  Effect.gen(function*() {
    const threshold = Math.max(1, Math.floor(options.failureThreshold))
    const resetMs = Duration.toMillis(Duration.fromInputUnsafe(options.resetTimeout))
    const clock = yield* Clock.Clock
    const runFork = Effect.runForkWith(yield* Effect.context<never>())
    let state: CircuitState = "closed"
    let failures = 0
    let openedAt = 0
    let probing = false

    /** Moves to `next`; the hook to run for it (undefined when nothing changed or nobody listens). */
    const move = (next: CircuitState): Effect.Effect<void> | undefined => {
      const previous = state
      state = next
      return previous === next || options.onStateChange === undefined ? undefined : options.onStateChange(next, previous)
    }

    /** Decides, synchronously (no yield between read and write), whether a caller may run. */
    const admitAt = (now: () => number): readonly [CircuitPermit | CircuitRejected, Effect.Effect<void> | undefined] => {
      if (state === "closed") return CLOSED
      if (state === "open" && now() - openedAt >= resetMs && !probing) {
        probing = true
        return [admittedProbe, move("half_open")]
      }
      return [{ _tag: "Rejected", retryInMs: state === "open" ? Math.max(0, openedAt + resetMs - now()) : 0 }, undefined]
    }

    // The clock is read only when a decision needs it (not per call while closed).
    const recordAt = (now: () => number, probe: boolean, outcome: CircuitOutcome): Effect.Effect<void> | undefined => {
      if (probe) probing = false
      if (outcome === "success") {
        failures = 0
        return move("closed")
      }
      // An interrupted or ignored probe proves nothing: back to open, the next caller may probe.
      if (outcome === "ignored") return probe ? move("open") : undefined
      if (!probe) failures += 1
      if (!probe && !(failures >= threshold && state === "closed")) return undefined
      openedAt = now()
      failures = 0
      return move("open")
    }

    const outcomeOf = (exit: Exit.Exit<unknown, unknown>): CircuitOutcome => {
      if (Exit.isSuccess(exit)) return "success"
      const error = Exit.findErrorOption(exit)
      const counted = !Exit.hasInterrupts(exit) &&
        (error._tag === "None" || options.isFailure === undefined || options.isFailure(error.value))
      return counted ? "failure" : "ignored"
    }

    const now = () => clock.currentTimeMillisUnsafe()

    // The same decisions as tryAcquire/release, with the transition hooks run in line.
    const protect = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | CircuitOpen, R> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.suspend((): Effect.Effect<A, E | CircuitOpen, R> => {
          const [decision, hook] = admitAt(now)
          if (decision._tag === "Rejected") return Effect.fail(new CircuitOpen({ name: options.name, retryInMs: decision.retryInMs }))
          return Effect.andThen(
            hook ?? Effect.void,
            restore(effect).pipe(Effect.onExit((exit) => Effect.suspend(() => recordAt(now, decision.probe, outcomeOf(exit)) ?? Effect.void)))
          )
        })
      )
    const tryAcquire = (): CircuitPermit | CircuitRejected => {
      const [decision, hook] = admitAt(now)
      if (hook !== undefined) runFork(hook)
      return decision
    }

    const release = (permit: CircuitPermit, outcome: CircuitOutcome): void => {
      const hook = recordAt(now, permit.probe, outcome)
      if (hook !== undefined) runFork(hook)
    }

    return {
      name: options.name,
      protect,
      tryAcquire,
      release,
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

/**
 * A breaker of an external service: its state is `auralink_circuit_breaker_state{name}` and every
 * transition is logged (`label circuit breaker open: whileOpen` as a warning, the others as info).
 */
export const makeObservedCircuitBreaker = (registry: Registry, options: {
  readonly name: string
  readonly label: string
  readonly failureThreshold: number
  readonly resetTimeoutMs: number
  /** What happens while it is open, for the warning. */
  readonly whileOpen: string
  readonly isFailure?: (error: unknown) => boolean
}): Effect.Effect<CircuitBreaker> => {
  const gauge = breakerStateGauge(registry, options.name)
  return makeCircuitBreaker({
    name: options.name,
    failureThreshold: options.failureThreshold,
    resetTimeout: Duration.millis(options.resetTimeoutMs),
    ...(options.isFailure === undefined ? {} : { isFailure: options.isFailure }),
    onStateChange: (next, previous) =>
      gauge(next, previous).pipe(Effect.andThen(
        next === "open"
          ? Effect.logWarning(`${options.label} circuit breaker open: ${options.whileOpen}`)
          : Effect.logInfo(`${options.label} circuit breaker ${next}`)
      ))
  })
}
