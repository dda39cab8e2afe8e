import { isSameProfile } from "h264-profile-level-id"
import type { types } from "mediasoup"
import type { OfferCodec, OfferMedia } from "./offer.ts"

const isRtx = (codec: { readonly mimeType: string }) => /\/rtx$/i.test(codec.mimeType)

const h264Profile = (p: OfferCodec["parameters"]) => ({
  "profile-level-id": String(p["profile-level-id"] ?? "42e01f")
})

/** The router codec's H.264 profile-level-id (a string in routerCodecs; anything else is the default). */
const routerProfile = (parameters: Record<string, unknown>) => {
  const id = parameters["profile-level-id"]
  return typeof id === "string" ? id : "42e01f"
}

/**
 * mediasoup's own strict match (ortc.matchCodecs), which `transport.produce` applies: same MIME
 * type, clock rate and channels; H.264 the same packetization mode and profile; VP9 the same profile.
 */
const sameCodec = (offered: OfferCodec, router: types.RtpCodecCapability): boolean => {
  const mime = offered.mimeType.toLowerCase()
  if (mime !== router.mimeType.toLowerCase() || offered.clockRate !== router.clockRate) return false
  if (mime.startsWith("audio/") && (offered.channels ?? 1) !== (router.channels ?? 1)) return false
  const ours = router.parameters ?? {}
  if (mime === "video/h264") {
    return Number(offered.parameters["packetization-mode"] ?? 0) === Number(ours["packetization-mode"] ?? 0) &&
      isSameProfile(h264Profile(offered.parameters), { "profile-level-id": routerProfile(ours) })
  }
  if (mime === "video/vp9") return Number(offered.parameters["profile-id"] ?? 0) === Number(ours["profile-id"] ?? 0)
  return true
}

/** The offered RTX payload type whose `apt` is `payloadType`, if the client offered one. */
const rtxFor = (media: OfferMedia, payloadType: number) => media.codecs.find((c) => isRtx(c) && Number(c.parameters["apt"]) === payloadType)

/** The router's RTCP feedback for a codec, kept only where the client offered it too. */
const sharedFeedback = (offered: OfferCodec, router: types.RtpCodecCapability) =>
  offered.rtcpFeedback.filter((fb) => (router.rtcpFeedback ?? []).some((r) => r.type === fb.type && (r.parameter ?? "") === fb.parameter))

export interface ChosenCodec {
  readonly codec: OfferCodec
  readonly router: types.RtpCodecCapability
  readonly rtx?: OfferCodec
}

/** The first codec of the m-line (the client's order of preference) that the router has, with its RTX. */
export const chooseCodec = (media: OfferMedia, routerCaps: types.RtpCapabilities): ChosenCodec | undefined => {
  for (const codec of media.codecs) {
    if (isRtx(codec)) continue
    const router = (routerCaps.codecs ?? []).find((r) => r.kind === media.kind && sameCodec(codec, r))
    if (router === undefined) continue
    const rtx = rtxFor(media, codec.payloadType)
    return rtx === undefined ? { codec, router } : { codec, router, rtx }
  }
  return undefined
}

/** The offered header extensions the router also knows (kept with the client's ids, as the producer will see them). */
export const sharedExtensions = (media: OfferMedia, routerCaps: types.RtpCapabilities) =>
  media.extensions.filter((e) => (routerCaps.headerExtensions ?? []).some((r) => r.uri === e.uri && (r.kind === media.kind)))

/** The codecs (the chosen one, then its RTX) as an answer and a producer both describe them. */
export const answeredCodecs = (chosen: ChosenCodec): ReadonlyArray<OfferCodec> => [
  { ...chosen.codec, rtcpFeedback: sharedFeedback(chosen.codec, chosen.router) },
  ...(chosen.rtx === undefined ? [] : [{ ...chosen.rtx, rtcpFeedback: [] }])
]

const encodingsOf = (media: OfferMedia, withRtx: boolean): Array<types.RtpEncodingParameters> => {
  if (media.rids.length > 0) return media.rids.map((rid) => ({ rid }))
  // No SSRC announced: one encoding that mediasoup matches by the MID header extension.
  if (media.streams.length === 0) return [{}]
  const [stream] = media.streams
  return stream === undefined ? [{}] : [
    withRtx && stream.rtxSsrc !== undefined ? { ssrc: stream.ssrc, rtx: { ssrc: stream.rtxSsrc } } : { ssrc: stream.ssrc }
  ]
}

/** A mediasoup producer's RTP parameters for what a sending m-line announces, answered with `chosen`. */
export const producerParameters = (media: OfferMedia, chosen: ChosenCodec, routerCaps: types.RtpCapabilities): types.RtpParameters => ({
  mid: media.mid,
  codecs: answeredCodecs(chosen).map((c) => ({
    mimeType: c.mimeType,
    payloadType: c.payloadType,
    clockRate: c.clockRate,
    ...(c.channels === undefined ? {} : { channels: c.channels }),
    parameters: { ...c.parameters },
    rtcpFeedback: c.rtcpFeedback.map((fb) => ({ type: fb.type, parameter: fb.parameter }))
  })),
  headerExtensions: sharedExtensions(media, routerCaps).flatMap((e) => isKnownUri(e.uri) ? [{ uri: e.uri, id: e.id, encrypt: false, parameters: {} }] : []),
  encodings: encodingsOf(media, chosen.rtx !== undefined),
  rtcp: { ...(media.cname === undefined ? {} : { cname: media.cname }), reducedSize: media.rtcpRsize }
})

/** The client's receive capabilities for one m-line of a WHEP offer, as mediasoup's `consume` takes them. */
export const receiveCapabilities = (media: OfferMedia): types.RtpCapabilities => ({
  codecs: media.codecs.flatMap((c): Array<types.RtpCodecCapability> =>
    c.mimeType.toLowerCase().startsWith("audio/") || c.mimeType.toLowerCase().startsWith("video/")
      ? [{
        kind: media.kind === "audio" ? "audio" : "video",
        mimeType: c.mimeType,
        preferredPayloadType: c.payloadType,
        clockRate: c.clockRate,
        ...(c.channels === undefined ? {} : { channels: c.channels }),
        parameters: { ...c.parameters },
        rtcpFeedback: c.rtcpFeedback.map((fb) => ({ type: fb.type, parameter: fb.parameter }))
      }]
      : []
  ),
  headerExtensions: media.extensions.flatMap((e) =>
    isKnownUri(e.uri) ? [{ kind: media.kind === "audio" ? "audio" as const : "video" as const, uri: e.uri, preferredId: e.id }] : []
  )
})

const knownUris: ReadonlyArray<types.RtpHeaderExtensionUri> = [
  "urn:ietf:params:rtp-hdrext:sdes:mid",
  "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
  "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
  "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
  "urn:3gpp:video-orientation",
  "urn:ietf:params:rtp-hdrext:toffset",
  "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
  "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
  "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time",
  "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
  "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"
]
/** mediasoup types header extension URIs as a closed union: the ones it knows. */
const isKnownUri = (uri: string): uri is types.RtpHeaderExtensionUri => knownUris.some((u) => u === uri)
