import { Schema } from "effect"
import { HttpApiError } from "effect/http-api"

/** The canonical form of an AuraID is `aura:<id>`; inputs may omit the prefix. */
export const AURA_PREFIX = "aura:"
export const canonicalAuraId = (id: string): string => (id.startsWith(AURA_PREFIX) ? id : `${AURA_PREFIX}${id}`)

/** An AuraID as callers give it: `aura:<id>` or `<id>`, where `<id>` is 1-128 of [A-Za-z0-9._-] starting alphanumeric. */
export const AuraIdInput = Schema.String.check(Schema.isPattern(/^(aura:)?[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, {
  expected: "an AuraID (aura:<id>, <id> of 1-128 letters, digits, '.', '_' or '-')"
}))

export const Email = Schema.String.check(Schema.isPattern(/^[^\s@]{1,64}@[^\s@]{1,255}$/, { expected: "an email address" }))
/** E.164. */
export const Phone = Schema.String.check(Schema.isPattern(/^\+[1-9][0-9]{6,14}$/, { expected: "an E.164 phone number (+<digits>)" }))

/** The owner's own sharing setting, as the Communication Service reports it (informational here). */
export const AuraPrivacy = Schema.Literals(["public", "contacts", "private"])

/** An identity as the Communication Service answers it (the wire contract's record). */
export const AuraIdentity = Schema.Struct({
  auraId: Schema.String,
  displayName: Schema.String,
  email: Schema.NullOr(Schema.String),
  phone: Schema.NullOr(Schema.String),
  verified: Schema.Boolean,
  privacy: AuraPrivacy
})
export type AuraIdentity = typeof AuraIdentity.Type

// ---- the Communication Service wire contract (README "AuraID resolution") -------------------

export const UpstreamBatchRequest = Schema.Struct({ ids: Schema.Array(Schema.String) })
export const UpstreamBatchResponse = Schema.Struct({ results: Schema.Array(AuraIdentity), missing: Schema.Array(Schema.String) })

// ---- this service's API ------------------------------------------------------------------

/** Most ids one `POST /api/auraid/resolve` (or gRPC ResolveBatch) may name. */
export const AURAID_RESOLVE_MAX = 100

/** An identity as this service answers it: email and phone are null (and `redacted` true) unless the caller may see them. */
export const ResolvedAuraId = Schema.Struct({
  ...AuraIdentity.fields,
  /** Served from cache past its TTL because the Communication Service could not be reached. */
  stale: Schema.Boolean,
  redacted: Schema.Boolean
})
export type ResolvedAuraId = typeof ResolvedAuraId.Type

export const ResolveRequest = Schema.Struct({
  ids: Schema.Array(AuraIdInput).check(Schema.isMinLength(1), Schema.isMaxLength(AURAID_RESOLVE_MAX))
})
export const ResolveResponse = Schema.Struct({ results: Schema.Array(ResolvedAuraId), missing: Schema.Array(Schema.String) })
export type ResolveResponse = typeof ResolveResponse.Type

/** Exactly one of them (checked by the program: 400 otherwise). */
export const ContactQuery = Schema.Struct({ email: Schema.optionalKey(Email), phone: Schema.optionalKey(Phone) })
export type ContactQuery = typeof ContactQuery.Type

export class AuraIdNotFound extends HttpApiError.Problem<AuraIdNotFound>()("AuraIdNotFound", {
  type: "about:blank",
  status: 404,
  title: "Not Found"
}, { detail: Schema.String }) {}

export class AuraIdBadRequest extends HttpApiError.Problem<AuraIdBadRequest>()("AuraIdBadRequest", {
  type: "about:blank",
  status: 400,
  title: "Bad Request"
}, { detail: Schema.String }) {}
