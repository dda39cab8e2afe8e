import { Effect, Layer, Option, Redacted } from "effect"
import { AuthMetrics } from "../../layers/auth/metrics.ts"
import { AuthStore, familyDenyKey } from "../../layers/AuthStore.ts"
import { TokenRejected, TokenSigner } from "../../layers/Tokens.ts"
import { Authentication, CurrentPrincipal, invalidToken } from "../../schemas/auth.ts"
import { capturedServices } from "../captured.ts"

/**
 * A bearer access token -> its principal: signature (HS256 only), iss, aud, exp/nbf and claims
 * (TokenSigner), then the deny-list (its jti and its refresh-token family) and the device's revocation. The reason is for logs.
 */
export const verifyAccessToken = Effect.fn("auth.verifyAccessToken")(function*(token: string) {
  const signer = yield* TokenSigner
  const store = yield* AuthStore
  if (token.length === 0) return yield* new TokenRejected({ reason: "missing" })
  const principal = yield* signer.verify(token)
  // Independent lookups (state store and Postgres): one round trip of waiting instead of three.
  const familyDenied = principal.familyId === undefined ? Effect.succeed(false) : store.isDenied(familyDenyKey(principal.familyId))
  const [denied, device, familyRevoked] = yield* Effect.orDie(
    Effect.all([store.isDenied(principal.jti), store.findDevice(principal.deviceId), familyDenied], { concurrency: 3 })
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
