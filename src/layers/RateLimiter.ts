import { Clock, Context, Effect, Layer } from "effect"
import { HttpServerResponse, ProblemDetails } from "effect/http"
import { AppConfig } from "./Config.ts"
import { Counter } from "prom-client"
import { Metrics } from "./Metrics.ts"
import { StateStore, StateStoreError } from "./StateStore.ts"

/** At most `limit` requests per fixed window of `windowMs` milliseconds (both whole numbers > 0). */
export interface RateLimitPolicy {
  readonly limit: number
  readonly windowMs: number
}

export const ENDPOINT_CLASSES = ["auth", "session", "default"] as const
/** `auth` is keyed by client IP, the others by user. */
export type EndpointClass = typeof ENDPOINT_CLASSES[number]
export type RateLimitPolicies = Readonly<Record<EndpointClass, RateLimitPolicy>>

export const AUTH_RATE_LIMIT: RateLimitPolicy = { limit: 100, windowMs: 60_000 }
export const SESSION_RATE_LIMIT: RateLimitPolicy = { limit: 300, windowMs: 60_000 }
export const DEFAULT_RATE_LIMIT: RateLimitPolicy = { limit: 500, windowMs: 60_000 }
/** The defaults by endpoint class; config overrides them through `RateLimiter.layerWith`. */
export const DEFAULT_RATE_LIMIT_POLICIES: RateLimitPolicies = {
  auth: AUTH_RATE_LIMIT,
  session: SESSION_RATE_LIMIT,
  default: DEFAULT_RATE_LIMIT
}

export interface Decision {
  readonly allowed: boolean
  readonly limit: number
  /** Requests left in this window after this one (0 when rejected). */
  readonly remaining: number
  /** Milliseconds until the window resets. */
  readonly resetMs: number
  /** Whole seconds to wait before retrying; 0 when allowed. */
  readonly retryAfterSeconds: number
}

export interface RateLimiterApi {
  readonly policies: RateLimitPolicies
  /**
   * Counts one request against `key` (e.g. `auth:203.0.113.9`) and decides. Atomic: of N
   * concurrent calls in a window exactly `limit` are allowed. An invalid policy fails with an
   * InvalidArgument StateStoreError before anything is counted. The rejection metric's `class`
   * label is the key up to its first ":".
   */
  readonly consume: (key: string, policy: RateLimitPolicy) => Effect.Effect<Decision, StateStoreError>
  /** `consume` for an endpoint class and subject (client IP for `auth`, user id otherwise), with the class's policy. */
  readonly check: (endpointClass: EndpointClass, subject: string) => Effect.Effect<Decision, StateStoreError>
}

const invalidPolicy = (detail: string) => Effect.fail(new StateStoreError({ operation: "rateLimit", reason: "InvalidArgument", detail }))

const validate = (key: string, policy: RateLimitPolicy): Effect.Effect<void, StateStoreError> => {
  if (key.length === 0) return invalidPolicy("key must be a non-empty string")
  if (!Number.isSafeInteger(policy.limit) || policy.limit <= 0) {
    return invalidPolicy(`limit must be a whole number > 0, got ${policy.limit}`)
  }
  if (!Number.isSafeInteger(policy.windowMs) || policy.windowMs <= 0) {
    return invalidPolicy(`windowMs must be a whole number > 0, got ${policy.windowMs}`)
  }
  return Effect.void
}

const REJECTIONS_METRIC = "auralink_rate_limit_rejections_total"

/** One counter per registry (a second limiter on the same registry reuses it). */
const rejectionsCounter = (metrics: Metrics["Service"]): Counter<string> => {
  const existing = metrics.registry.getSingleMetric(REJECTIONS_METRIC)
  if (existing instanceof Counter) return existing
  return new Counter({
    name: REJECTIONS_METRIC,
    help: "Requests rejected by the rate limiter, by endpoint class",
    labelNames: ["class"] as const,
    registers: [metrics.registry]
  })
}

const make = (policies: RateLimitPolicies) =>
  Effect.gen(function*() {
    // A bad policy (e.g. from config) stops the layer instead of failing open on every request.
    for (const endpointClass of ENDPOINT_CLASSES) yield* validate(endpointClass, policies[endpointClass])
    const store = (yield* StateStore).namespace("ratelimit")
    const rejections = rejectionsCounter(yield* Metrics)

    const consume = (key: string, policy: RateLimitPolicy): Effect.Effect<Decision, StateStoreError> =>
      Effect.andThen(
        validate(key, policy),
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          // Windows aligned to the epoch, their length and start in the key
          // (`ratelimit:<class>:<subject>:<windowMs>:<windowStart>`): every instance agrees on the window
          // without a second round trip, and two window lengths never share a counter (a minute and an
          // hour start together at the top of each hour); the TTL only cleans up.
          const windowStart = Math.floor(now / policy.windowMs) * policy.windowMs
          const resetMs = Math.max(1, windowStart + policy.windowMs - now)
          const count = yield* store.incr(`${key}:${policy.windowMs}:${windowStart}`, 1, { ttlMs: resetMs })
          const allowed = count <= policy.limit
          if (!allowed) rejections.inc({ class: key.split(":", 1)[0] ?? key })
          return {
            allowed,
            limit: policy.limit,
            remaining: Math.max(0, policy.limit - count),
            resetMs,
            retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil(resetMs / 1000))
          }
        })
      )

    return RateLimiter.of({
      policies,
      consume,
      check: (endpointClass, subject) => consume(`${endpointClass}:${subject}`, policies[endpointClass])
    })
  })

/** Fixed-window request limits kept in the StateStore (Redis or in-memory), with a rejection counter on Metrics. */
export class RateLimiter extends Context.Service<RateLimiter, RateLimiterApi>()("auralink/RateLimiter") {
  /** Policies from config (RATE_LIMIT_*_PER_MINUTE), per one-minute window. */
  static readonly layer = Layer.effect(
    RateLimiter,
    Effect.flatMap(Effect.service(AppConfig), ({ rateLimit }) =>
      make({
        auth: { limit: rateLimit.authPerMinute, windowMs: 60_000 },
        session: { limit: rateLimit.sessionPerMinute, windowMs: 60_000 },
        default: { limit: rateLimit.defaultPerMinute, windowMs: 60_000 }
      }))
  )

  /** The defaults with some classes' policies replaced (e.g. from config). */
  static readonly layerWith = (overrides: Partial<RateLimitPolicies>) => Layer.effect(RateLimiter, make({ ...DEFAULT_RATE_LIMIT_POLICIES, ...overrides }))
}

/** `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds), and `Retry-After` when rejected. */
export const rateLimitHeaders = (decision: Decision): Record<string, string> => {
  const headers: Record<string, string> = {
    "ratelimit-limit": String(decision.limit),
    "ratelimit-remaining": String(decision.remaining),
    "ratelimit-reset": String(Math.max(1, Math.ceil(decision.resetMs / 1000)))
  }
  if (!decision.allowed) headers["retry-after"] = String(decision.retryAfterSeconds)
  return headers
}

/** The 429 problem-details response for a rejected decision, with all the rate-limit headers. */
export const rateLimitedResponse = (decision: Decision, instance?: string): HttpServerResponse.HttpServerResponse =>
  ProblemDetails.toResponse({
    type: ProblemDetails.blankType,
    status: 429,
    title: "Too Many Requests",
    detail: `Rate limit of ${decision.limit} requests exceeded; retry after ${decision.retryAfterSeconds} s`,
    retryAfterSeconds: decision.retryAfterSeconds,
    ...(instance === undefined ? {} : { instance })
  }).pipe(HttpServerResponse.setHeaders(rateLimitHeaders(decision)))

export { RateLimit, RateLimited, UserRateLimit } from "../schemas/rate-limit.ts"
