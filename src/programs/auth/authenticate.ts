import { Effect, Option } from "effect"
import { AuthMetrics } from "../../layers/auth/metrics.ts"
import { AuthStore, familyDenyKey } from "../../layers/AuthStore.ts"
import { TokenRejected, TokenSigner } from "../../layers/Tokens.ts"
import { invalidToken } from "../../schemas/auth.ts"
import { serviceUnavailable } from "../../schemas/unavailable.ts"

/** The token of an `Authorization: Bearer <token>` header; None for any other header or none. */
export const bearerToken = (authorization: string | undefined): Option.Option<string> =>
  authorization !== undefined && /^bearer /i.test(authorization) ? Option.some(authorization.slice(7).trim()) : Option.none()

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
