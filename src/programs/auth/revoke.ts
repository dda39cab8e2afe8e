import { Effect, Option } from "effect"
import { AuthMetrics } from "../../layers/auth/metrics.ts"
import { sha256 } from "../../layers/auth/secrets.ts"
import { AuthStore } from "../../layers/AuthStore.ts"
import { CurrentPrincipal, DeviceNotFound, ProvisioningUnauthorized } from "../../schemas/auth.ts"
import { authenticate, denyListUnavailable } from "./authenticate.ts"
import { type CredentialHeaders, isProvisioningKey, presentedCredential } from "./provisioning.ts"
import type { DeviceId } from "../../schemas/ids.ts"

/**
 * Signs the caller out: the presented refresh token's family (if it is this device's) is revoked
 * and the access token's jti is denied until it would have expired.
 */
export const revokeSession = Effect.fn("auth.revokeSession")(function*(input: { readonly refreshToken?: string }) {
  const principal = yield* CurrentPrincipal
  const store = yield* AuthStore
  const metrics = yield* AuthMetrics
  if (input.refreshToken !== undefined && (yield* store.revokeFamilyOf(sha256(input.refreshToken), principal.deviceId))) {
    yield* metrics.revoked
  }
  // Fails closed: a sign-out the deny-list cannot record is a 503, not a silent success.
  yield* store.denyAccessToken(principal.jti, principal.exp).pipe(
    Effect.catchTag("StateStoreError", () => Effect.fail(denyListUnavailable()))
  )
  yield* metrics.revoked
  yield* Effect.logInfo("session revoked").pipe(Effect.annotateLogs({ event: "session_revoked", deviceId: principal.deviceId }))
})

/** Revokes a device and all its token families: by the operator key, or by an access token of the device's user. */
export const revokeDevice = Effect.fn("auth.revokeDevice")(function*(deviceId: DeviceId, headers: CredentialHeaders) {
  const store = yield* AuthStore
  const metrics = yield* AuthMetrics
  const credential = presentedCredential(headers)
  if (Option.isNone(credential)) return yield* new ProvisioningUnauthorized({ detail: "A provisioning key or access token is required" })
  const operator = yield* isProvisioningKey(credential.value)
  const principal = operator ? Option.none() : Option.some(
    yield* authenticate(credential.value).pipe(
      Effect.catchTag("InvalidToken", () => Effect.fail(new ProvisioningUnauthorized({ detail: "A provisioning key or access token is required" })))
    )
  )
  const device = yield* store.findDevice(deviceId)
  // Another user's device answers like a missing one, so ids cannot be probed.
  if (Option.isNone(device) || (Option.isSome(principal) && principal.value.userId !== device.value.userId)) {
    return yield* new DeviceNotFound({ detail: "No such device" })
  }
  yield* store.revokeDevice(deviceId)
  yield* metrics.revoked
  yield* Effect.logInfo("device revoked").pipe(Effect.annotateLogs({ event: "device_revoked", deviceId, by: operator ? "operator" : "user" }))
})
