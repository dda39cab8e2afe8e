import { Cause } from "effect"
import { HttpServerResponse, ProblemDetails } from "effect/http"
import { HttpServerError } from "effect/http"

/** RFC 9457 body for the failures that never reach an endpoint (unknown route, body too large, defects). */
export const problem = (status: number, title: string, extra: Record<string, unknown>) =>
  ProblemDetails.toResponse({ type: "about:blank", status, title, ...extra })

/** 503 problem details with the same `Retry-After` in the header and the body. */
export const unavailableProblem = (detail: string, retryAfterSeconds: number, instance: string) =>
  problem(503, "Service Unavailable", { detail, instance, retryAfterSeconds }).pipe(
    HttpServerResponse.setHeader("retry-after", String(retryAfterSeconds))
  )

/**
 * Maps what escaped the endpoints to problem details. Endpoint errors are already responses
 * (HttpApi renders them); this handles routing/parsing failures and defects, which get a
 * generic 500 carrying only the requestId, never a stack trace.
 */
export const problemForCause = (cause: Cause.Cause<unknown>, requestId: string, path: string): HttpServerResponse.HttpServerResponse => {
  // HttpApi surfaces a body that fails to read (too large, bad encoding) as a defect, so look at both.
  const error = Cause.squash(cause)
  if (HttpServerError.isHttpServerError(error)) {
    const reason = error.reason
    if (reason._tag === "RouteNotFound") {
      return problem(404, "Not Found", { detail: `No route for ${reason.request.method} ${path}`, instance: path, requestId })
    }
    if (reason._tag === "RequestParseError") {
      return reason.reason === "BodyTooLarge"
        ? problem(413, "Content Too Large", { detail: "The request body is larger than the configured limit", instance: path, requestId })
        : problem(400, "Bad Request", { detail: "The request could not be parsed", instance: path, requestId })
    }
  }
  return problem(500, "Internal Server Error", { detail: "An unexpected error occurred; quote the requestId when reporting it", instance: path, requestId })
}
