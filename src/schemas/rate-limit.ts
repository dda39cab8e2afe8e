import { Schema } from "effect"
import { HttpApiMiddleware } from "effect/http-api"
import { CurrentPrincipal } from "./auth.ts"

/** Over the limit: 429, rendered as problem details (with Retry-After and RateLimit-* headers). */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  detail: Schema.String,
  retryAfterSeconds: Schema.Int
}, { httpApiStatus: 429 }) {}

/** Limits by client IP, for endpoints used before a caller has a token (the auth endpoints). */
export class RateLimit extends HttpApiMiddleware.Service<RateLimit>()("auralink/RateLimit", { error: RateLimited }) {}

/** Limits by authenticated user; goes after `Authentication`, whose principal it reads. */
export class UserRateLimit extends HttpApiMiddleware.Service<UserRateLimit, { requires: CurrentPrincipal; provides: never }>()(
  "auralink/UserRateLimit",
  { error: RateLimited }
) {}
