import { Effect, Layer, Option, Redacted } from "effect"
import { HttpServerRequest } from "effect/http"
import { AuthMetrics } from "../../layers/auth/metrics.ts"
import { AuthStore } from "../../layers/AuthStore.ts"
import { RateLimiter, rateLimitedResponse } from "../../layers/RateLimiter.ts"
import { TokenSigner } from "../../layers/Tokens.ts"
import { StateStore } from "../../layers/StateStore.ts"
import { authenticate } from "../../programs/auth/authenticate.ts"
import { tokenOrTicket } from "../../programs/cluster/affinity.ts"
import { countBadToken } from "../../programs/auth/bad-tokens.ts"
import { Authentication, CurrentPrincipal } from "../../schemas/auth.ts"
import { capturedServices } from "./captured.ts"

/**
 * The `Authentication` middleware: provides CurrentPrincipal or answers 401 invalid_token; a
 * rejected token counts against the client IP's budget, and past it the answer is 429.
 */
export const AuthenticationLive = Layer.effect(
  Authentication,
  Effect.gen(function*() {
    const services = yield* capturedServices<TokenSigner | AuthStore | AuthMetrics | RateLimiter | StateStore>()
    return Authentication.of({
      bearer: (httpEffect, { credential }) =>
        Effect.gen(function*() {
          const request = yield* HttpServerRequest.HttpServerRequest
          const token = yield* tokenOrTicket(Redacted.value(credential), request.method, request.url).pipe(Effect.provideContext(services))
          const principal = yield* Effect.result(authenticate(token).pipe(Effect.provideContext(services)))
          if (principal._tag === "Success") return yield* Effect.provideService(httpEffect, CurrentPrincipal, principal.success)
          const decision = yield* countBadToken(Option.getOrElse(request.remoteAddress, () => "unknown")).pipe(Effect.provideContext(services))
          if (Option.isSome(decision) && !decision.value.allowed) return rateLimitedResponse(decision.value, new URL(request.url, "http://x").pathname)
          return yield* principal.failure
        })
    })
  })
)
