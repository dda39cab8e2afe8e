import { Effect, Option, Redacted } from "effect"
import { constantTimeEquals } from "../../layers/auth/secrets.ts"
import { AuthMetrics } from "../../layers/auth/metrics.ts"
import { AppConfig } from "../../layers/Config.ts"
import { Forbidden, ProvisioningUnauthorized } from "../../schemas/auth.ts"

export interface CredentialHeaders {
  readonly authorization?: string | undefined
  readonly "x-provisioning-key"?: string | undefined
}

/** The credential presented: `X-Provisioning-Key`, else the `Authorization: Bearer` token. */
export const presentedCredential = (headers: CredentialHeaders): Option.Option<string> => {
  const explicit = headers["x-provisioning-key"]?.trim()
  if (explicit !== undefined && explicit.length > 0) return Option.some(explicit)
  const match = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? "")
  return Option.fromNullishOr(match?.[1])
}

/** true when `credential` is the configured provisioning key (compared in constant time). */
export const isProvisioningKey = (credential: string) =>
  Effect.map(AppConfig, ({ auth }) => Option.isSome(auth.provisioningKey) && constantTimeEquals(credential, Redacted.value(auth.provisioningKey.value)))

/** Operator-only actions: 403 when no key is configured, 401 when it is missing or wrong. */
export const requireProvisioningKey = (headers: CredentialHeaders) =>
  Effect.gen(function*() {
    const { auth } = yield* AppConfig
    const metrics = yield* AuthMetrics
    if (Option.isNone(auth.provisioningKey)) {
      return yield* new Forbidden({ detail: "Device registration is disabled: no provisioning key is configured" })
    }
    const credential = presentedCredential(headers)
    if (Option.isNone(credential) || !(yield* isProvisioningKey(credential.value))) {
      yield* metrics.rejected("provisioning")
      return yield* new ProvisioningUnauthorized({ detail: "A valid provisioning key is required" })
    }
  })
