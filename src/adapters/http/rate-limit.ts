import { Effect, Layer, Option } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { type Decision, type EndpointClass, RateLimiter, rateLimitedResponse, rateLimitHeaders } from "../../layers/RateLimiter.ts"
import { checkRateLimit } from "../../programs/rate-limit.ts"
import { CurrentPrincipal } from "../../schemas/auth.ts"
import { RateLimit, UserRateLimit } from "../../schemas/rate-limit.ts"

/**
 * Runs `decide` (`checkRateLimit`) before the endpoint: over the limit it answers 429 itself (so
 * the headers go out with it); under it, the endpoint's response gets the RateLimit-* headers.
 */
const limited = <E, R>(
  decide: Effect.Effect<Option.Option<Decision>>,
  httpEffect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
) =>
  Effect.gen(function*() {
    const decision = yield* decide
    if (Option.isNone(decision)) return yield* httpEffect
    if (!decision.value.allowed) {
      const request = yield* HttpServerRequest.HttpServerRequest
      return rateLimitedResponse(decision.value, new URL(request.url, "http://x").pathname)
    }
    return HttpServerResponse.setHeaders(yield* httpEffect, rateLimitHeaders(decision.value))
  })

/** `RateLimit` keyed by client IP (`request.remoteAddress`, which a trusted-proxy middleware may have replaced). */
export const RateLimitLive = (endpointClass: EndpointClass) =>
  Layer.effect(
    RateLimit,
    Effect.map(Effect.service(RateLimiter), (limiter) =>
      RateLimit.of((httpEffect) =>
        Effect.flatMap(Effect.service(HttpServerRequest.HttpServerRequest), (request) => {
          const ip = Option.getOrElse(request.remoteAddress, () =>
            "unknown")
          return limited(checkRateLimit(endpointClass, ip).pipe(Effect.provideService(RateLimiter, limiter)), httpEffect)
        })
      ))
  )

/** `UserRateLimit` keyed by user: the `session` class under /api/session(s), `default` elsewhere. */
export const UserRateLimitLive = Layer.effect(
  UserRateLimit,
  Effect.map(Effect.service(RateLimiter), (limiter) =>
    UserRateLimit.of((httpEffect) =>
      Effect.gen(function*() {
        const { userId } = yield* CurrentPrincipal
        const request = yield* HttpServerRequest.HttpServerRequest
        const endpointClass: EndpointClass = request.url.startsWith("/api/session") ? "session" : "default"
        return yield* limited(checkRateLimit(endpointClass, userId).pipe(Effect.provideService(RateLimiter, limiter)), httpEffect)
      })
    ))
)
