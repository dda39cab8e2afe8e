import { status } from "@grpc/grpc-js"
import { Effect, Schema } from "effect"
import { type AuraIdResolver, CommunicationServiceUnavailable } from "../../layers/AuraIdResolver.ts"
import { findAuraIdByContact, resolveAuraId, resolveAuraIds } from "../../programs/auraid/resolve.ts"
import { type AuraIdBadRequest, AuraIdInput, type AuraIdNotFound, ContactQuery, type ResolvedAuraId, ResolveRequest } from "../../schemas/auraid.ts"
import { serviceUnavailable } from "../../schemas/unavailable.ts"
import type { Statuses } from "./kit/failure.ts"
import { asRecord, decodeWith } from "./kit/request.ts"
import { serveGrpc } from "./kit/service.ts"

export const AURAID_SERVICE = "auralink.auraid.v1.AuraIdService"

type AuraIdError = AuraIdNotFound | AuraIdBadRequest

const statuses: Statuses<AuraIdError> = {
  AuraIdNotFound: status.NOT_FOUND,
  AuraIdBadRequest: status.INVALID_ARGUMENT
}

/** Down or not configured: UNAVAILABLE, as REST's 503. */
const upstreamFailures = <A, E, R>(program: Effect.Effect<A, E | CommunicationServiceUnavailable, R>) =>
  program.pipe(Effect.catchIf(
    (error): error is CommunicationServiceUnavailable => error instanceof CommunicationServiceUnavailable,
    (error) => Effect.fail(serviceUnavailable(`AuraID resolution unavailable: ${error.reason}`))
  ))

// Proto's oneof arrives as { contact: "email", email: "..." }; absent members are not set.
const contactOf = (request: unknown) => {
  const fields = asRecord(request)
  const chosen = fields["contact"]
  return chosen === "email" || chosen === "phone" ? { [chosen]: fields[chosen] } : {}
}

const toProto = (identity: ResolvedAuraId) => ({
  auraId: identity.auraId,
  displayName: identity.displayName,
  ...(identity.email === null ? {} : { email: identity.email }),
  ...(identity.phone === null ? {} : { phone: identity.phone }),
  verified: identity.verified,
  privacy: identity.privacy,
  stale: identity.stale,
  redacted: identity.redacted
})

/** `auralink.auraid.v1.AuraIdService`: the REST AuraID endpoints over the same programs. */
export const AuraIdGrpcLive = serveGrpc<AuraIdError, AuraIdResolver>(
  { service: AURAID_SERVICE, proto: "auraid.proto", rateLimit: "default", statuses },
  ({ unary }) => ({
    Resolve: unary("Resolve", (request, principal) =>
      Effect.gen(function*() {
        const id = yield* decodeWith(AuraIdInput, asRecord(request)["auraId"], "aura_id")
        return toProto(yield* upstreamFailures(resolveAuraId(principal, id)))
      })),
    ResolveBatch: unary("ResolveBatch", (request, principal) =>
      Effect.gen(function*() {
        const { ids } = yield* decodeWith(ResolveRequest, { ids: asRecord(request)["auraIds"] }, "", { ids: "aura_ids" })
        const answer = yield* upstreamFailures(resolveAuraIds(principal, ids))
        return { results: answer.results.map(toProto), missing: answer.missing }
      })),
    FindByContact: unary("FindByContact", (request, principal) =>
      Effect.gen(function*() {
        const query = yield* decodeWith(Schema.toType(ContactQuery), contactOf(request), "")
        return toProto(yield* upstreamFailures(findAuraIdByContact(principal, query)))
      }))
  })
)
