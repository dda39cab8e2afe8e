import { Context, Deferred, Duration, Effect, Layer, Option, Ref } from "effect"
import { KNOWN_DEPENDENCIES, KNOWN_SECTIONS } from "../schemas/health.ts"
import { AppConfig } from "./Config.ts"

/** One dependency's readiness probe; `critical` is its default (READY_CRITICAL_DEPENDENCIES, when set, decides instead). */
export interface ReadinessCheck {
  readonly name: string
  readonly critical: boolean
  readonly check: Effect.Effect<void, unknown>
}

export interface DependencyState {
  readonly status: "up" | "down" | "unconfigured"
  readonly latencyMs: number | null
  readonly lastError: string | null
  readonly critical: boolean
}

export interface Readiness {
  readonly ready: boolean
  readonly shuttingDown: boolean
  /** By name: the seed's dependencies first (`unconfigured` when none registered), then the others. */
  readonly dependencies: Readonly<Record<string, DependencyState>>
}

export interface HealthOptions {
  /** The critical dependencies by name; none: each check's own default. */
  readonly critical: Option.Option<ReadonlyArray<string>>
}

const CHECK_TIMEOUT = Duration.seconds(2)

const describe = (error: unknown): string => error instanceof Error ? error.message : typeof error === "string" ? error : "check failed"

const probe = (c: ReadinessCheck) =>
  Effect.gen(function*() {
    const started = performance.now()
    const outcome = yield* c.check.pipe(
      Effect.timeoutOrElse({ duration: CHECK_TIMEOUT, orElse: () => Effect.fail(`no answer within ${Duration.format(CHECK_TIMEOUT)}`) }),
      Effect.result
    )
    const latencyMs = Math.round((performance.now() - started) * 100) / 100
    return { latencyMs, error: outcome._tag === "Success" ? Option.none<string>() : Option.some(describe(outcome.failure)) }
  })

/** Names in the order `/ready` and `/status` show them: the known ones, then the rest as registered. */
const ordered = (known: ReadonlyArray<string>, registered: ReadonlyArray<string>) => [...known, ...registered.filter((n) => !known.includes(n))]

/**
 * Readiness and status in one place: infrastructure layers register a readiness probe and a
 * `/status` section when they start; `/ready`, gRPC health and `/status` read them here.
 */
export class Health extends Context.Service<Health, {
  readonly register: (check: ReadinessCheck) => Effect.Effect<void>
  readonly section: (name: string, stats: Effect.Effect<unknown>) => Effect.Effect<void>
  readonly readiness: Effect.Effect<Readiness>
  /** Every section by name, the known ones first (`{ status: "unconfigured" }` when none registered). */
  readonly sections: Effect.Effect<Record<string, unknown>>
  /** Flips readiness to not-ready for good: the first step of shutdown. */
  readonly beginShutdown: Effect.Effect<void>
  readonly shuttingDown: Effect.Effect<boolean>
  /** Completes when shutdown begins (e.g. to tell a client on an open stream to go elsewhere). */
  readonly goingAway: Effect.Effect<void>
}>()("auralink/Health") {
  static readonly layerWith = (options: HealthOptions) =>
    Layer.effect(
      Health,
      Effect.gen(function*() {
        const checks = yield* Ref.make<ReadonlyArray<ReadinessCheck>>([])
        const sectionsRef = yield* Ref.make<ReadonlyArray<readonly [string, Effect.Effect<unknown>]>>([])
        // The last failure per dependency, shown after it recovers.
        const lastErrors = yield* Ref.make<ReadonlyMap<string, string>>(new Map())
        // Done once shutdown began: `shuttingDown` reads it, `goingAway` waits for it.
        const stopped = yield* Deferred.make<void>()
        const isCritical = (name: string, byDefault: boolean) =>
          Option.match(options.critical, { onNone: () => byDefault, onSome: (names) => names.includes(name) })

        const state = (c: ReadinessCheck) =>
          Effect.gen(function*() {
            const { latencyMs, error } = yield* probe(c)
            if (Option.isSome(error)) yield* Ref.update(lastErrors, (m) => new Map(m).set(c.name, error.value))
            const lastError = (yield* Ref.get(lastErrors)).get(c.name) ?? null
            const dependency: DependencyState = { status: Option.isSome(error) ? "down" : "up", latencyMs, lastError, critical: isCritical(c.name, c.critical) }
            return [c.name, dependency] as const
          })

        return {
          register: (check) => Ref.update(checks, (all) => [...all.filter((c) => c.name !== check.name), check]),
          section: (name, stats) => Ref.update(sectionsRef, (all) => [...all.filter(([n]) => n !== name), [name, stats] as const]),
          readiness: Effect.gen(function*() {
            const registered = yield* Ref.get(checks)
            const probed = new Map(yield* Effect.forEach(registered, state, { concurrency: "unbounded" }))
            const unconfigured = (name: string): DependencyState => ({
              status: "unconfigured",
              latencyMs: null,
              lastError: null,
              critical: isCritical(name, false)
            })
            const dependencies = Object.fromEntries(
              ordered(KNOWN_DEPENDENCIES, registered.map((c) => c.name)).map((name) => [name, probed.get(name) ?? unconfigured(name)])
            )
            const shuttingDown = yield* Deferred.isDone(stopped)
            // An unconfigured dependency never holds readiness back: only one that is there and down does.
            const ready = !shuttingDown && [...probed.values()].every((d) => d.status === "up" || !d.critical)
            return { ready, shuttingDown, dependencies }
          }),
          sections: Effect.gen(function*() {
            const registered = new Map(yield* Ref.get(sectionsRef))
            const entries = yield* Effect.forEach(ordered(KNOWN_SECTIONS, [...registered.keys()]), (name) => {
              const stats = registered.get(name)
              return stats === undefined ? Effect.succeed([name, { status: "unconfigured" }] as const) : Effect.map(stats, (value) => [name, value] as const)
            })
            return Object.fromEntries(entries)
          }),
          beginShutdown: Effect.asVoid(Deferred.succeed(stopped, undefined)),
          shuttingDown: Deferred.isDone(stopped),
          goingAway: Deferred.await(stopped)
        }
      })
    )

  /** Critical dependencies from READY_CRITICAL_DEPENDENCIES, else each check's default (postgres, and redis when configured). */
  static readonly layer = Layer.unwrap(Effect.gen(function*() {
    return Health.layerWith({ critical: (yield* AppConfig).service.readyCritical })
  }))

  /** Each check's own default: for tests that build no config. */
  static readonly layerTest = Health.layerWith({ critical: Option.none() })
}
