import { Context, Deferred, Duration, Effect, Layer, Ref } from "effect"

/** One dependency's readiness probe; `critical` ones turn `/ready` to 503 when down. */
export interface ReadinessCheck {
  readonly name: string
  readonly critical: boolean
  readonly check: Effect.Effect<void, unknown>
}

export interface DependencyState {
  readonly name: string
  readonly critical: boolean
  readonly status: "up" | "down"
  readonly latencyMs: number
  readonly error?: string
}

export interface Readiness {
  readonly ready: boolean
  readonly shuttingDown: boolean
  readonly dependencies: ReadonlyArray<DependencyState>
}

const CHECK_TIMEOUT = Duration.seconds(2)

const describe = (error: unknown): string => error instanceof Error ? error.message : typeof error === "string" ? error : "check failed"

const probe = (c: ReadinessCheck): Effect.Effect<DependencyState> =>
  Effect.gen(function*() {
    const started = performance.now()
    const outcome = yield* c.check.pipe(
      Effect.timeoutOrElse({ duration: CHECK_TIMEOUT, orElse: () => Effect.fail(`no answer within ${Duration.format(CHECK_TIMEOUT)}`) }),
      Effect.result
    )
    const latencyMs = Math.round((performance.now() - started) * 100) / 100
    return outcome._tag === "Success"
      ? { name: c.name, critical: c.critical, status: "up" as const, latencyMs }
      : { name: c.name, critical: c.critical, status: "down" as const, latencyMs, error: describe(outcome.failure) }
  })

/**
 * Readiness and status in one place: infrastructure layers register a readiness probe and a
 * `/status` section when they start; `/ready`, gRPC health and `/status` read them here.
 */
export class Health extends Context.Service<Health, {
  readonly register: (check: ReadinessCheck) => Effect.Effect<void>
  readonly section: (name: string, stats: Effect.Effect<unknown>) => Effect.Effect<void>
  readonly readiness: Effect.Effect<Readiness>
  readonly sections: Effect.Effect<Record<string, unknown>>
  /** Flips readiness to not-ready for good: the first step of shutdown. */
  readonly beginShutdown: Effect.Effect<void>
  readonly shuttingDown: Effect.Effect<boolean>
  /** Completes when shutdown begins (e.g. to tell a client on an open stream to go elsewhere). */
  readonly goingAway: Effect.Effect<void>
}>()("auralink/Health") {
  static readonly layer = Layer.effect(
    Health,
    Effect.gen(function*() {
      const checks = yield* Ref.make<ReadonlyArray<ReadinessCheck>>([])
      const sectionsRef = yield* Ref.make<ReadonlyArray<readonly [string, Effect.Effect<unknown>]>>([])
      // Done once shutdown began: `shuttingDown` reads it, `goingAway` waits for it.
      const stopped = yield* Deferred.make<void>()
      return {
        register: (check) => Ref.update(checks, (all) => [...all.filter((c) => c.name !== check.name), check]),
        section: (name, stats) => Ref.update(sectionsRef, (all) => [...all.filter(([n]) => n !== name), [name, stats] as const]),
        readiness: Effect.gen(function*() {
          const dependencies = yield* Effect.forEach(yield* Ref.get(checks), probe, { concurrency: "unbounded" })
          const shuttingDown = yield* Deferred.isDone(stopped)
          const ready = !shuttingDown && dependencies.every((d) => d.status === "up" || !d.critical)
          return { ready, shuttingDown, dependencies }
        }),
        sections: Effect.gen(function*() {
          const entries = yield* Effect.forEach(yield* Ref.get(sectionsRef), ([name, stats]) => Effect.map(stats, (value) => [name, value] as const))
          return Object.fromEntries(entries)
        }),
        beginShutdown: Effect.asVoid(Deferred.succeed(stopped, undefined)),
        shuttingDown: Deferred.isDone(stopped),
        goingAway: Deferred.await(stopped)
      }
    })
  )
}
