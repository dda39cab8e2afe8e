import { Schema } from "effect"
import { HttpApiError } from "effect/http-api"

/** The body is not an SDP offer at all (400). */
export class MalformedOffer extends HttpApiError.Problem<MalformedOffer>()("MalformedOffer", {
  type: "urn:auralink:problem:malformed-sdp",
  status: 400,
  title: "Malformed SDP offer"
}, { detail: Schema.String }) {}

/** An SDP offer this service cannot answer: what is missing is named (422). */
export class UnusableOffer extends HttpApiError.Problem<UnusableOffer>()("UnusableOffer", {
  type: "urn:auralink:problem:unusable-sdp",
  status: 422,
  title: "Unusable SDP offer"
}, { detail: Schema.String }) {}

/** A WHIP or WHEP resource this instance does not hold (never made, deleted, or its session ended). */
export class ResourceNotFound extends HttpApiError.Problem<ResourceNotFound>()("ResourceNotFound", {
  type: "about:blank",
  status: 404,
  title: "Not Found"
}, { detail: Schema.String }) {}

/** `If-Match` names another entity tag than the resource's current one (RFC 9110 §13.1.1). */
export class EtagMismatch extends HttpApiError.Problem<EtagMismatch>()("EtagMismatch", {
  type: "about:blank",
  status: 412,
  title: "Precondition Failed"
}, { detail: Schema.String }) {}

/** A PATCH body that is not a trickle ICE SDP fragment, or an ICE restart without `If-Match`. */
export class BadFragment extends HttpApiError.Problem<BadFragment>()("BadFragment", {
  type: "urn:auralink:problem:bad-sdpfrag",
  status: 400,
  title: "Bad trickle ICE fragment"
}, { detail: Schema.String }) {}

/** WHEP on a session that has nothing to play (no producer of a kind the offer asks for, on this instance). */
export class NothingToPlay extends HttpApiError.Problem<NothingToPlay>()("NothingToPlay", {
  type: "urn:auralink:problem:nothing-to-play",
  status: 409,
  title: "Nothing to play"
}, { detail: Schema.String }) {}

/** What `POST /api/session/:id/share` answers: a WHEP URL and the bearer token that opens it. */
export const ShareGrant = Schema.Struct({
  token: Schema.String,
  whepUrl: Schema.String,
  expiresAt: Schema.String
})
export type ShareGrant = typeof ShareGrant.Type

export const ShareRequest = Schema.Struct({
  /** Seconds the token lives (at most WHEP_SHARE_TOKEN_TTL_SECONDS, which is also the default). */
  ttlSeconds: Schema.optionalKey(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 86_400 })))
})
export type ShareRequest = typeof ShareRequest.Type
