import type { types } from "mediasoup"
import { write } from "sdp-transform"
import type { MediaAttributes, MediaDescription, SessionDescription } from "sdp-transform"
import { formatFmtp } from "./fmtp.ts"
import type { Offer, OfferCodec, OfferMedia } from "./offer.ts"

/** What the server sends on an m-line it answers `sendonly` (WHEP): one RTP stream per track. */
export interface SentStream {
  readonly ssrc: number
  readonly rtxSsrc?: number
  readonly cname: string
  readonly streamId: string
  readonly trackId: string
}

/** How one offered m-line is answered. */
export type AnsweredMedia =
  | { readonly accept: false }
  | {
    readonly accept: true
    readonly direction: "recvonly" | "sendonly"
    readonly codecs: ReadonlyArray<OfferCodec>
    readonly extensions: ReadonlyArray<{ readonly id: number; readonly uri: string }>
    /** The simulcast layers received (WHIP), answered `a=rid:<id> recv`. */
    readonly rids?: ReadonlyArray<string>
    readonly sent?: SentStream
  }

/** The server's side of the one bundled transport (mediasoup is ICE-lite). */
export interface TransportSide {
  readonly ice: types.IceParameters
  readonly candidates: ReadonlyArray<types.IceCandidate>
  readonly fingerprint: types.DtlsFingerprint
  /** Our DTLS role: `passive` (we wait for the client's handshake) unless the client insisted on being passive. */
  readonly setup: "active" | "passive"
}

/** The DTLS role the answer takes for the offerer's `a=setup`, and the role mediasoup is told the client has. */
export const dtlsRoles = (offered: Offer["setup"]) =>
  offered === "passive"
    ? { answer: "active" as const, client: "server" as const }
    : { answer: "passive" as const, client: "client" as const }

export const candidateLines = (candidates: ReadonlyArray<types.IceCandidate>): NonNullable<MediaAttributes["candidates"]> =>
  candidates.map((c) => ({
    foundation: c.foundation,
    component: 1,
    transport: c.protocol,
    priority: c.priority,
    ip: c.address,
    port: c.port,
    type: c.type,
    ...(c.tcpType === undefined ? {} : { tcptype: c.tcpType })
  }))

const rejected = (m: OfferMedia): MediaDescription => ({
  type: m.kind,
  port: 0,
  protocol: m.protocol,
  payloads: m.formats,
  mid: m.mid,
  direction: "inactive",
  rtp: [],
  fmtp: []
})

const accepted = (m: OfferMedia, a: Extract<AnsweredMedia, { accept: true }>, side: TransportSide): MediaDescription => ({
  type: m.kind,
  port: 9,
  protocol: "UDP/TLS/RTP/SAVPF",
  payloads: a.codecs.map((c) => c.payloadType).join(" "),
  connection: { version: 4, ip: "0.0.0.0" },
  mid: m.mid,
  direction: a.direction,
  iceUfrag: side.ice.usernameFragment,
  icePwd: side.ice.password,
  fingerprint: { type: side.fingerprint.algorithm, hash: side.fingerprint.value },
  setup: side.setup,
  rtcpMux: "rtcp-mux",
  ...(m.rtcpRsize ? { rtcpRsize: "rtcp-rsize" } : {}),
  candidates: candidateLines(side.candidates),
  endOfCandidates: "end-of-candidates",
  rtp: a.codecs.map((c) => {
    const [, name = c.mimeType] = c.mimeType.split("/")
    return { payload: c.payloadType, codec: name, rate: c.clockRate, ...(c.channels === undefined ? {} : { encoding: c.channels }) }
  }),
  fmtp: a.codecs.flatMap((c) => Object.keys(c.parameters).length === 0 ? [] : [{ payload: c.payloadType, config: formatFmtp(c.parameters) }]),
  rtcpFb: a.codecs.flatMap((c) =>
    c.rtcpFeedback.map((fb) => ({ payload: String(c.payloadType), type: fb.type, ...(fb.parameter === "" ? {} : { subtype: fb.parameter }) }))
  ),
  ext: a.extensions.map((e) => ({ value: e.id, uri: e.uri })),
  ...(a.rids === undefined || a.rids.length === 0 ? {} : {
    rids: a.rids.map((id) => ({ id, direction: "recv" })),
    simulcast: { dir1: "recv", list1: a.rids.join(";") }
  }),
  ...(a.sent === undefined ? {} : sentStreamLines(a.sent))
})

const sentStreamLines = (s: SentStream): Partial<MediaDescription> => {
  const ssrcs = s.rtxSsrc === undefined ? [s.ssrc] : [s.ssrc, s.rtxSsrc]
  return {
    msid: [{ id: s.streamId, appdata: s.trackId }],
    ssrcs: ssrcs.flatMap((id) => [{ id, attribute: "cname", value: s.cname }, { id, attribute: "msid", value: `${s.streamId} ${s.trackId}` }]),
    ...(s.rtxSsrc === undefined ? {} : { ssrcGroups: [{ semantics: "FID", ssrcs: `${s.ssrc} ${s.rtxSsrc}` }] })
  }
}

/**
 * The SDP answer: every offered m-line in order (RFC 3264), accepted ones bundled on the one
 * transport, rejected ones with port 0; ICE-lite, the server's candidates inline and
 * end-of-candidates (the server never trickles).
 */
export const writeAnswer = (offer: Offer, answers: ReadonlyArray<AnsweredMedia>, side: TransportSide, sessionVersion = 1): string => {
  const media = offer.media.map((m, i) => {
    const a = answers[i]
    return a === undefined || !a.accept ? rejected(m) : accepted(m, a, side)
  })
  const bundled = offer.media.filter((_, i) => answers[i]?.accept === true).map((m) => m.mid)
  const session: SessionDescription = {
    version: 0,
    origin: { username: "-", sessionId: String(Date.now()), sessionVersion, netType: "IN", ipVer: 4, address: "127.0.0.1" },
    name: "-",
    timing: { start: 0, stop: 0 },
    icelite: "ice-lite",
    // No group when the offer had none (a single m-line): an answer may not add one (RFC 8843 §7.3).
    ...(offer.bundle.length === 0 ? {} : { groups: [{ type: "BUNDLE", mids: bundled.join(" ") }] }),
    msidSemantic: { semantic: "WMS", token: "*" },
    media
  }
  return write(session)
}
