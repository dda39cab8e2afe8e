import { Effect } from "effect"
import { AuthMetrics } from "../../layers/auth/metrics.ts"
import { sha256 } from "../../layers/auth/secrets.ts"
import { AuthStore } from "../../layers/AuthStore.ts"
import { AppConfig } from "../../layers/Config.ts"
import { IAT_SKEW_SECONDS } from "../../layers/Tokens.ts"
import { invalidGrant } from "../../schemas/auth.ts"
import { newRefreshToken, tokenResponse } from "./issue-token.ts"

/**
 * Rotates a refresh token: the presented one is marked used and a new one joins its family,
 * atomically. Presenting a used token again revokes the family (RFC 9700 §4.14), denies the
 * family's live access tokens at once, and is logged as a security event.
 */
export const refresh = Effect.fn("auth.refresh")(function*(input: { readonly refreshToken: string }, refreshTtlSeconds: number) {
  const store = yield* AuthStore
  const metrics = yield* AuthMetrics
  const next = newRefreshToken()
  const outcome = yield* store.rotate(sha256(input.refreshToken), (current) => ({ ...current, hash: next.hash, ttlSeconds: refreshTtlSeconds }))
  switch (outcome._tag) {
    case "Rotated":
      yield* metrics.refreshed
      return yield* tokenResponse({ userId: outcome.userId, deviceId: outcome.deviceId, familyId: outcome.familyId }, next.token)
    case "Reused": {
      // Every access token of the family dies within accessTokenTtl (+ the iat skew) of now: deny the family that long.
      const { auth } = yield* AppConfig
      yield* store.denyFamily(outcome.familyId, auth.accessTokenTtlSeconds + IAT_SKEW_SECONDS).pipe(
        Effect.catch((error) =>
          Effect.logError("could not deny the reused family's access tokens; they stay valid until they expire", error).pipe(
            Effect.annotateLogs({ event: "refresh_token_reuse", familyId: outcome.familyId })
          )
        )
      )
      yield* Effect.logWarning("refresh token reuse detected; token family revoked").pipe(
        Effect.annotateLogs({ event: "refresh_token_reuse", familyId: outcome.familyId, deviceId: outcome.deviceId })
      )
      yield* metrics.rejected("refresh_reuse")
      yield* metrics.revoked
      return yield* invalidGrant()
    }
    case "Invalid":
      yield* metrics.rejected("invalid_grant")
      return yield* invalidGrant()
  }
})
