import { Effect, Option } from "effect"
import { AuraIdResolver } from "../../layers/AuraIdResolver.ts"
import { AuraIdBadRequest, AuraIdNotFound, canonicalAuraId, type ContactQuery, type ResolveResponse } from "../../schemas/auraid.ts"
import type { Principal } from "../../schemas/auth.ts"
import { present } from "./privacy.ts"

/** One AuraID (`aura:<id>` or `<id>`), as `principal` may see it; 404 when the Communication Service does not know it. */
export const resolveAuraId = Effect.fn("auraid.resolve")(function*(principal: Principal, id: string) {
  const auraId = canonicalAuraId(id)
  const found = yield* (yield* AuraIdResolver).resolve(auraId)
  if (Option.isNone(found)) return yield* new AuraIdNotFound({ detail: `No AuraID ${auraId}` })
  return present(principal, found.value)
})

/** Several AuraIDs (duplicates and both forms answered once), found ones in request order, the rest in `missing`. */
export const resolveAuraIds = Effect.fn("auraid.resolveBatch")(function*(principal: Principal, ids: ReadonlyArray<string>) {
  const auraIds = [...new Set(ids.map(canonicalAuraId))]
  const found = yield* (yield* AuraIdResolver).resolveMany(auraIds)
  const response: { results: Array<ResolveResponse["results"][number]>; missing: Array<string> } = { results: [], missing: [] }
  for (const auraId of auraIds) {
    const resolution = found.get(auraId) ?? Option.none()
    if (Option.isSome(resolution)) response.results.push(present(principal, resolution.value))
    else response.missing.push(auraId)
  }
  return response satisfies ResolveResponse
})

/** Reverse lookup by exactly one of email or phone; the identity as `principal` may see it. */
export const findAuraIdByContact = Effect.fn("auraid.findByContact")(function*(principal: Principal, query: ContactQuery) {
  const { email, phone } = query
  const contact = email !== undefined && phone === undefined ? { email } : phone !== undefined && email === undefined ? { phone } : undefined
  if (contact === undefined) return yield* new AuraIdBadRequest({ detail: "Give exactly one of email or phone" })
  const found = yield* (yield* AuraIdResolver).findByContact(contact)
  if (Option.isNone(found)) return yield* new AuraIdNotFound({ detail: "No AuraID has this contact" })
  return present(principal, found.value)
})
