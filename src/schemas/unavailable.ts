import { Schema } from "effect"
import { HttpApiError, HttpApiSchema } from "effect/http-api"

/**
 * 503 problem with `Retry-After`: a dependency this request needs is down (e.g. Redis for the
 * token deny-list), a media worker is stalled, or the service is shutting down. One class for all
 * of them, so an endpoint never declares two 503 responses.
 */
export class ServiceUnavailable extends HttpApiError.Problem<ServiceUnavailable>()("ServiceUnavailable", {
  type: "about:blank",
  status: 503,
  title: "Service Unavailable"
}, {
  detail: Schema.String,
  retryAfterSeconds: Schema.Int,
  /** Where to go instead: the URL of a less loaded instance (a new session refused for capacity or drain). */
  alternate: Schema.optionalKey(Schema.String)
}) {}

export const ServiceUnavailableResponse = ServiceUnavailable.pipe(HttpApiSchema.encodeToWithHeaders(
  { body: ServiceUnavailable, headers: { "retry-after": Schema.String } },
  {
    decode: ({ body }) => body,
    encode: (body) => ({ body, headers: { "retry-after": String(body.retryAfterSeconds) } })
  }
))

/** How long a client should wait after a 503 for a dependency outage. */
export const OUTAGE_RETRY_AFTER_SECONDS = 2

export const serviceUnavailable = (detail: string, retryAfterSeconds = OUTAGE_RETRY_AFTER_SECONDS) => new ServiceUnavailable({ detail, retryAfterSeconds })
