import { Effect } from "effect"
import type { types } from "mediasoup"
import { dtlsRoles, type TransportSide } from "../../media/sdp/answer.ts"
import { type Offer, type OfferMedia, parseOffer, unbundled } from "../../media/sdp/offer.ts"
import type { WebRtcEndpoint } from "../../layers/MediaServer.ts"
import { MalformedOffer, UnusableOffer } from "../../schemas/whip.ts"

/** The offer, or the 400 / 422 that names what is wrong with it. */
export const readOffer = (sdp: string): Effect.Effect<Offer, MalformedOffer | UnusableOffer> => {
  const parsed = parseOffer(sdp)
  if (parsed.ok) return Effect.succeed(parsed.value)
  return Effect.fail(
    parsed.problem.kind === "malformed" ? new MalformedOffer({ detail: parsed.problem.detail }) : new UnusableOffer({ detail: parsed.problem.detail })
  )
}

/** The m-lines to be answered must share the resource's one transport (BUNDLE), or the 422. */
export const requireBundled = (offer: Offer, media: ReadonlyArray<OfferMedia>): Effect.Effect<void, UnusableOffer> => {
  const detail = unbundled(offer, media)
  return detail === undefined ? Effect.void : Effect.fail(new UnusableOffer({ detail }))
}

const fingerprintAlgorithms: ReadonlyArray<types.FingerprintAlgorithm> = ["sha-1", "sha-224", "sha-256", "sha-384", "sha-512"]
const isAlgorithm = (a: string): a is types.FingerprintAlgorithm => fingerprintAlgorithms.some((known) => known === a)

/** The client's DTLS parameters for mediasoup's `connect` (its role follows from its `a=setup`). */
export const clientDtls = (offer: Offer): Effect.Effect<types.DtlsParameters, UnusableOffer> => {
  const algorithm = offer.fingerprint.algorithm
  if (!isAlgorithm(algorithm)) {
    return Effect.fail(new UnusableOffer({ detail: `a=fingerprint uses ${algorithm}; one of ${fingerprintAlgorithms.join(", ")} is needed` }))
  }
  return Effect.succeed({ role: dtlsRoles(offer.setup).client, fingerprints: [{ algorithm, value: offer.fingerprint.value }] })
}

/** The server's side of the answer: its ICE credentials and candidates, and its sha-256 fingerprint. */
export const serverSide = (offer: Offer, endpoint: WebRtcEndpoint): TransportSide => {
  const fingerprints = endpoint.dtlsParameters.fingerprints
  const fingerprint = fingerprints.find((f) => f.algorithm === "sha-256") ?? fingerprints[0] ?? { algorithm: "sha-256", value: "" }
  return { ice: endpoint.iceParameters, candidates: endpoint.iceCandidates, fingerprint, setup: dtlsRoles(offer.setup).answer }
}
