import type { Resolution } from "../../layers/AuraIdResolver.ts"
import { type AuraIdentity, canonicalAuraId, type ResolvedAuraId } from "../../schemas/auraid.ts"
import type { Principal } from "../../schemas/auth.ts"
import { isOperator } from "../sessions/access.ts"

/**
 * Whether `principal` may see the private fields (email, phone) of `identity`: an operator, or the
 * AuraID's own user, i.e. a principal whose user id is the AuraID in either form (`aura:42` or `42`).
 */
export const maySeeContact = (principal: Principal, identity: AuraIdentity): boolean =>
  isOperator(principal) || canonicalAuraId(principal.userId) === canonicalAuraId(identity.auraId)

/** The answer for `principal`: email and phone nulled (and `redacted`) unless it may see them. */
export const present = (principal: Principal, { identity, stale }: Resolution): ResolvedAuraId => {
  const visible = maySeeContact(principal, identity)
  return {
    ...identity,
    email: visible ? identity.email : null,
    phone: visible ? identity.phone : null,
    stale,
    redacted: !visible && (identity.email !== null || identity.phone !== null)
  }
}
