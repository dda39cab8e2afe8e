import { Effect, Option } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse, ProblemDetails } from "effect/http"
import { rateLimitedResponse } from "../../layers/RateLimiter.ts"
import { countBadToken } from "../../programs/auth/bad-tokens.ts"
import { receiveWebhook } from "../../programs/rooms/webhook.ts"
import { OUTAGE_RETRY_AFTER_SECONDS } from "../../schemas/unavailable.ts"
import { capturedServices } from "./captured.ts"

export const LIVEKIT_WEBHOOK_PATH = "/api/livekit/webhook"

const problem = (status: number, title: string, detail: string, headers: Record<string, string> = {}) =>
  ProblemDetails.toResponse({ type: "about:blank", status, title, detail }).pipe(HttpServerResponse.setHeaders(headers))

/**
 * LiveKit's webhook deliveries (`Content-Type: application/webhook+json`, which the JSON API
 * routes do not take, and a signature over the exact body bytes): a route of its own. 200 with
 * what was done (`applied`, `duplicate`, `stale`, `ignored`); 401 when the signature does not
 * verify; 503 when webhooks are off or the state store is down (LiveKit retries 5xx).
 */
const livekitWebhook = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const body = yield* Effect.result(request.text)
  if (body._tag === "Failure") return problem(413, "Content Too Large", "the webhook body could not be read within the body limit")
  const outcome = yield* Effect.result(receiveWebhook(body.success, request.headers["authorization"]))
  if (outcome._tag === "Success") return HttpServerResponse.jsonUnsafe(outcome.success)
  const failure = outcome.failure
  switch (failure._tag) {
    case "WebhookRejected": {
      // Unsigned traffic counts against the client IP's `auth` budget, as bad access tokens do.
      const decision = yield* countBadToken(Option.getOrElse(request.remoteAddress, () => "unknown"))
      if (Option.isSome(decision) && !decision.value.allowed) return rateLimitedResponse(decision.value, LIVEKIT_WEBHOOK_PATH)
      return problem(401, "Unauthorized", `webhook signature rejected: ${failure.detail}`)
    }
    case "WebhooksOff":
      return problem(503, "Service Unavailable", failure.detail)
    case "StateStoreError":
      return problem(503, "Service Unavailable", "room state is unavailable (state store)", { "retry-after": String(OUTAGE_RETRY_AFTER_SECONDS) })
  }
})

/** The webhook route; the services it reads are built once below the listeners (see main.ts). */
export const LiveKitWebhookRoute = HttpRouter.use((router) =>
  Effect.gen(function*() {
    const services = yield* capturedServices<Exclude<Effect.Services<typeof livekitWebhook>, HttpRouter.Provided>>()
    yield* router.add("POST", LIVEKIT_WEBHOOK_PATH, livekitWebhook.pipe(Effect.provideContext(services)))
  })
)
