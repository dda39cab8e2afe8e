import { Effect, Layer, Option, Redacted } from "effect"
import { AuthMetrics } from "../../layers/auth/metrics.ts"
import { AuthStore } from "../../layers/AuthStore.ts"
import { TokenRejected, TokenSigner } from "../../layers/Tokens.ts"
import { Authentication, CurrentPrincipal, invalidToken } from "../../schemas/auth.ts"
import { serviceUnavailable } from "../../schemas/unavailable.ts"
import { capturedServices } from "../captured.ts"

/**
 * A bearer access token -> its principal: signature (HS256 only), iss, aud, exp/nbf and claims
 * (TokenSigner), then the jti deny-list and the device's revocation. The reason is for logs.
 * The deny-list fails closed: a state store it cannot read gives 503 (ServiceUnavailable), so a
 * revoked token never works again because Redis is down.
 */
export const verifyAccessToken = Effect.fn("auth.verifyAccessToken")(function*(token: string) {
  const signer = yield* TokenSigner
  const store = yield* AuthStore
  if (token.length === 0) return yield* new TokenRejected({ reason: "missing" })
  const principal = yield* signer.verify(token)
  // Independent lookups (state store and Postgres): one round trip of waiting instead of two.
  const denyList = store.isDenied(principal.jti).pipe(
    Effect.catchTag("StateStoreError", (error) =>
      Effect.logWarning("token deny-list unavailable; request refused").pipe(
        Effect.annotateLogs({ event: "deny_list_unavailable", error: error.detail }),
        Effect.andThen(Effect.fail(serviceUnavailable("The token deny-list is unavailable; retry shortly")))
      ))
  )
  const [denied, device] = yield* Effect.all([denyList, Effect.orDie(store.findDevice(principal.deviceId))], { concurrency: 2 })
  if (denied) return yield* new TokenRejected({ reason: "revoked_token" })
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

/** The `Authentication` middleware: provides CurrentPrincipal or answers 401 invalid_token. */
export const AuthenticationLive = Layer.effect(
  Authentication,
  Effect.gen(function*() {
    const services = Layer.succeedContext(yield* capturedServices<TokenSigner | AuthStore | AuthMetrics>())
    return Authentication.of({
      bearer: (httpEffect, { credential }) =>
        authenticate(Redacted.value(credential)).pipe(
          Effect.provide(services),
          Effect.flatMap((principal) => Effect.provideService(httpEffect, CurrentPrincipal, principal))
        )
    })
  })
)
