import { Effect, Option } from "effect"
import { type Decision, RateLimiter } from "../../layers/RateLimiter.ts"

/**
 * Counts one request with a missing, forged, expired or revoked token against its client IP
 * (key `badtoken:<ip>`, the `auth` class's budget): a client spraying tokens gets 429 like one
 * spraying logins. None when the limiter is down (the request is answered 401 as before).
 */
export const countBadToken = (ip: string): Effect.Effect<Option.Option<Decision>, never, RateLimiter> =>
  Effect.gen(function*() {
    const limiter = yield* RateLimiter
    return yield* limiter.consume(`badtoken:${ip}`, limiter.policies.auth).pipe(
      Effect.map(Option.some),
      Effect.catch((error) => Effect.as(Effect.logWarning("rate limiter unavailable, bad token not counted", { error: error.message }), Option.none()))
    )
  })
