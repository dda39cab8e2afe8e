import { Effect, Option } from "effect"
import { AuthMetrics } from "../../layers/auth/metrics.ts"
import { DECOY_HASH, randomToken, sha256, verifySecret } from "../../layers/auth/secrets.ts"
import { AuthStore } from "../../layers/AuthStore.ts"
import { TokenSigner } from "../../layers/Tokens.ts"
import { invalidClient } from "../../schemas/auth.ts"

export const ACCESS_SCOPE = "session"

/** The token response: a new access JWT (carrying the refresh token's family as `fid`) next to the given (already stored) refresh token. */
export const tokenResponse = Effect.fn("auth.tokenResponse")(function*(
  subject: { readonly userId: string; readonly deviceId: string; readonly familyId: string },
  refreshToken: string
) {
  const access = yield* (yield* TokenSigner).sign({ ...subject, scope: ACCESS_SCOPE })
  return { accessToken: access.token, tokenType: "Bearer" as const, expiresIn: access.expiresIn, refreshToken }
})

/** A fresh opaque refresh token and the SHA-256 under which it is stored. */
export const newRefreshToken = () => {
  const token = randomToken()
  return { token, hash: sha256(token) }
}

/** Device credentials -> token pair. Unknown device, wrong secret and revoked device all look the same. */
export const issueToken = Effect.fn("auth.issueToken")(
  function*(input: { readonly deviceId: string; readonly deviceSecret: string }, refreshTtlSeconds: number) {
    const store = yield* AuthStore
    const metrics = yield* AuthMetrics
    const device = yield* store.findDevice(input.deviceId)
    // The scrypt runs for unknown devices too, so timing does not tell them apart.
    const stored = Option.match(device, { onNone: () => DECOY_HASH, onSome: (d) => d.secretHash })
    const matches = yield* verifySecret(input.deviceSecret, stored)
    if (Option.isNone(device) || !matches || device.value.revoked) {
      yield* metrics.rejected("invalid_client")
      return yield* invalidClient()
    }
    const subject = { userId: device.value.userId, deviceId: device.value.id, familyId: crypto.randomUUID() }
    const refresh = newRefreshToken()
    yield* store.insertRefreshToken({ hash: refresh.hash, ...subject, ttlSeconds: refreshTtlSeconds })
    yield* metrics.issued
    return yield* tokenResponse(subject, refresh.token)
  }
)
