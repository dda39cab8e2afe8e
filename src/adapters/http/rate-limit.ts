import { Effect, Layer, Option } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { type Decision, type EndpointClass, RateLimiter, rateLimitedResponse, rateLimitHeaders } from "../../layers/RateLimiter.ts"
import type { StateStoreError } from "../../layers/StateStore.ts"
import { CurrentPrincipal } from "../../schemas/auth.ts"
import { RateLimit, UserRateLimit } from "../../schemas/rate-limit.ts"

/**
 * Runs `decide` before the endpoint: over the limit it answers 429 itself (so the headers go out
 * with it); under it, the endpoint's response gets the RateLimit-* headers. A store failure lets
 * the request through (logged): the limiter must not take the API down with it.
 */
const limited = <E, R>(
  decide: Effect.Effect<Decision, StateStoreError>,
  httpEffect: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
) =>
  Effect.gen(function*() {
    const decision = yield* decide.pipe(
      Effect.map(Option.some),
      Effect.catch((error) => Effect.as(Effect.logWarning("rate limiter unavailable, request let through", { error: error.message }), Option.none()))
    )
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
        Effect.flatMap(Effect.service(HttpServerRequest.HttpServerRequest), (request) =>
          limited(
            limiter.check(
              endpointClass,
              Option.getOrElse(request.remoteAddress, () =>
                "unknown")
            ),
            httpEffect
          ))
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
        return yield* limited(limiter.check(endpointClass, userId), httpEffect)
      })
    ))
)
