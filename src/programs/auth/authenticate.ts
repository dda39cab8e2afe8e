import { Effect, Layer, Option, Redacted } from "effect"
import { HttpServerRequest } from "effect/http"
import { AuthMetrics } from "../../layers/auth/metrics.ts"
import { AuthStore, familyDenyKey } from "../../layers/AuthStore.ts"
import { RateLimiter, rateLimitedResponse } from "../../layers/RateLimiter.ts"
import { TokenRejected, TokenSigner } from "../../layers/Tokens.ts"
import { Authentication, CurrentPrincipal, invalidToken } from "../../schemas/auth.ts"
import { serviceUnavailable } from "../../schemas/unavailable.ts"
import { capturedServices } from "../captured.ts"
import { countBadToken } from "./bad-tokens.ts"

/** The 503 of a deny-list read or write the state store cannot do (the deny-list fails closed). */
export const denyListUnavailable = () => serviceUnavailable("The token deny-list is unavailable; retry shortly")

/**
 * A bearer access token -> its principal: signature (HS256 only), iss, aud, exp/nbf and claims
 * (TokenSigner), then the deny-list (its jti and its refresh-token family) and the device's revocation. The reason is for logs.
 * The deny-list fails closed: a state store it cannot read gives 503 (ServiceUnavailable), so a
 * revoked token never works again because Redis is down.
 */
export const verifyAccessToken = Effect.fn("auth.verifyAccessToken")(function*(token: string) {
  const signer = yield* TokenSigner
  const store = yield* AuthStore
  if (token.length === 0) return yield* new TokenRejected({ reason: "missing" })
  const principal = yield* signer.verify(token)
  const denyList = (key: string) =>
    store.isDenied(key).pipe(
      Effect.catchTag("StateStoreError", (error) =>
        Effect.logWarning("token deny-list unavailable; request refused").pipe(
          Effect.annotateLogs({ event: "deny_list_unavailable", error: error.detail }),
          Effect.andThen(Effect.fail(denyListUnavailable()))
        ))
    )
  const familyDenied = principal.familyId === undefined ? Effect.succeed(false) : denyList(familyDenyKey(principal.familyId))
  // Independent lookups (state store and Postgres): one round trip of waiting instead of three.
  const [denied, device, familyRevoked] = yield* Effect.all(
    [denyList(principal.jti), Effect.orDie(store.findDevice(principal.deviceId)), familyDenied],
    { concurrency: 3 }
  )
  if (denied) return yield* new TokenRejected({ reason: "revoked_token" })
  if (familyRevoked) return yield* new TokenRejected({ reason: "revoked_family" })
  if (Option.isNone(device) || device.value.revoked || device.value.userId !== principal.userId) {
    return yield* new TokenRejected({ reason: "revoked_device" })
  }
  return principal
})

/** The same check, failing with the generic 401 problem (counted and logged by reason). */
export const authenticate = (token: string) =>
  verifyAccessToken(token).pipe(
    Effect.catchTag("TokenRejected", (rejected) =>
      Effect.gen(function*() {
        yield* (yield* AuthMetrics).rejected("invalid_token")
        yield* Effect.logInfo("access token rejected").pipe(Effect.annotateLogs({ event: "access_token_rejected", reason: rejected.reason }))
        return yield* invalidToken()
      }))
  )

/**
 * The `Authentication` middleware: provides CurrentPrincipal or answers 401 invalid_token; a
 * rejected token counts against the client IP's budget, and past it the answer is 429.
 */
export const AuthenticationLive = Layer.effect(
  Authentication,
  Effect.gen(function*() {
    const services = Layer.succeedContext(yield* capturedServices<TokenSigner | AuthStore | AuthMetrics | RateLimiter>())
    return Authentication.of({
      bearer: (httpEffect, { credential }) =>
        Effect.gen(function*() {
          const principal = yield* Effect.result(authenticate(Redacted.value(credential)))
          if (principal._tag === "Success") return yield* Effect.provideService(httpEffect, CurrentPrincipal, principal.success)
          const request = yield* HttpServerRequest.HttpServerRequest
          const decision = yield* countBadToken(Option.getOrElse(request.remoteAddress, () => "unknown"))
          if (Option.isSome(decision) && !decision.value.allowed) return rateLimitedResponse(decision.value, new URL(request.url, "http://x").pathname)
          return yield* principal.failure
        }).pipe(Effect.provide(services))
    })
  })
)
