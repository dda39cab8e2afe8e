import { Effect, Exit, Option } from "effect"
import { isOperator } from "../sessions/access.ts"
import { verifyAccessToken } from "./authenticate.ts"
import { type CredentialHeaders, isProvisioningKey, presentedCredential } from "./provisioning.ts"

/**
 * Whether a request comes from an operator: it presents the provisioning key (either header) or a
 * valid access token with the `operator` scope. Anything else, a bad or expired token included, is
 * not an operator (no error: callers fall back to their public answer).
 */
export const isOperatorRequest = (headers: CredentialHeaders) =>
  Effect.gen(function*() {
    const credential = presentedCredential(headers)
    if (Option.isNone(credential)) return false
    if (yield* isProvisioningKey(credential.value)) return true
    if (headers.authorization === undefined) return false
    // A token check that fails for any reason (deny-list store down included) is just "not an operator" here.
    const verified = yield* Effect.exit(verifyAccessToken(credential.value))
    return Exit.isSuccess(verified) && isOperator(verified.value)
  })
