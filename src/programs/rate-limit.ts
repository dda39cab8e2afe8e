import { Effect, Option } from "effect"
import { type Decision, type EndpointClass, RateLimiter } from "../layers/RateLimiter.ts"

/**
 * The `endpointClass` budget of `subject` (a client IP or a user id), counting this request. None
 * when the limiter's store is down: the request is let through (logged), so the limiter never
 * takes the API down with it. REST, gRPC and the SSE route all decide this way.
 */
export const checkRateLimit = (endpointClass: EndpointClass, subject: string): Effect.Effect<Option.Option<Decision>, never, RateLimiter> =>
  Effect.flatMap(Effect.service(RateLimiter), (limiter) =>
    limiter.check(endpointClass, subject).pipe(
      Effect.map(Option.some),
      Effect.catch((error) => Effect.as(Effect.logWarning("rate limiter unavailable, request let through", { error: error.message }), Option.none()))
    ))
