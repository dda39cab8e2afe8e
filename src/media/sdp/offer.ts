import { parse } from "sdp-transform"
import type { MediaDescription, SessionDescription } from "sdp-transform"
import { type Fmtp, parseFmtp } from "./fmtp.ts"

/** What an SDP offer's m-line says its sender will do (RFC 3264). */
export type Direction = "sendrecv" | "sendonly" | "recvonly" | "inactive"

/** One payload type of an m-line: rtpmap, fmtp and rtcp-fb folded together. */
export interface OfferCodec {
  readonly payloadType: number
  /** e.g. `audio/opus`, `video/H264`, `video/rtx`. */
  readonly mimeType: string
  readonly clockRate: number
  readonly channels?: number
  readonly parameters: Fmtp
  readonly rtcpFeedback: ReadonlyArray<{ readonly type: string; readonly parameter: string }>
}

/** One SSRC the sender will use, with its RTX (RFC 4588, `a=ssrc-group:FID`) when it has one. */
export interface OfferStream {
  readonly ssrc: number
  readonly rtxSsrc?: number
}

export interface OfferMedia {
  readonly index: number
  /** `audio`, `video`, `application` or anything else a client may offer. */
  readonly kind: string
  readonly mid: string
  readonly direction: Direction
  readonly protocol: string
  /** The m-line's format list as written (answers echo one back for a rejected m-line). */
  readonly formats: string
  readonly codecs: ReadonlyArray<OfferCodec>
  readonly extensions: ReadonlyArray<{ readonly id: number; readonly uri: string }>
  readonly streams: ReadonlyArray<OfferStream>
  /** Simulcast layers the sender announces (`a=rid:<id> send` named in `a=simulcast:send`). */
  readonly rids: ReadonlyArray<string>
  readonly cname?: string
  readonly rtcpRsize: boolean
}

export interface Offer {
  readonly ice: { readonly ufrag: string; readonly pwd: string }
  readonly fingerprint: { readonly algorithm: string; readonly value: string }
  /** The offerer's DTLS role (RFC 4145 `a=setup`). */
  readonly setup: "actpass" | "active" | "passive"
  /** The mids of `a=group:BUNDLE` (empty without one: a client offering one m-line may leave it out). */
  readonly bundle: ReadonlyArray<string>
  readonly media: ReadonlyArray<OfferMedia>
}

/** Why an offer cannot be used: `malformed` (400) when it is not SDP at all, `unusable` (422) otherwise. */
export interface OfferProblem {
  readonly kind: "malformed" | "unusable"
  readonly detail: string
}

export type Parsed<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly problem: OfferProblem }
const fail = (kind: OfferProblem["kind"], detail: string): Parsed<never> => ({ ok: false, problem: { kind, detail } })

const directions: ReadonlyArray<Direction> = ["sendrecv", "sendonly", "recvonly", "inactive"]
const directionOf = (m: MediaDescription, session: SessionDescription): Direction => {
  const raw = m.direction ?? session.direction
  return directions.find((d) => d === raw) ?? "sendrecv"
}

const codecsOf = (m: MediaDescription): Array<OfferCodec> =>
  m.rtp.map((rtp) => {
    const fmtp = (m.fmtp ?? []).filter((f) => f.payload === rtp.payload).map((f) => f.config).join(";")
    const feedback = (m.rtcpFb ?? []).filter((fb) => String(fb.payload) === String(rtp.payload) || fb.payload === "*")
    const channels = rtp.encoding === undefined ? undefined : Number(rtp.encoding)
    return {
      payloadType: rtp.payload,
      mimeType: `${m.type}/${rtp.codec}`,
      clockRate: rtp.rate ?? 90000,
      ...(channels === undefined || Number.isNaN(channels) ? {} : { channels }),
      parameters: parseFmtp(fmtp),
      rtcpFeedback: feedback.map((fb) => ({ type: fb.type, parameter: fb.subtype ?? "" }))
    }
  })

/** The primary SSRCs and their RTX partners: every `a=ssrc` not the second of an FID group. */
const streamsOf = (m: MediaDescription): Array<OfferStream> => {
  const fid = new Map<number, number>()
  for (const group of m.ssrcGroups ?? []) {
    if (group.semantics !== "FID") continue
    const [primary, rtx] = group.ssrcs.split(/\s+/).map(Number)
    if (primary !== undefined && rtx !== undefined) fid.set(primary, rtx)
  }
  const secondaries = new Set(fid.values())
  const seen = new Set<number>()
  const streams: Array<OfferStream> = []
  for (const line of m.ssrcs ?? []) {
    const ssrc = Number(line.id)
    if (seen.has(ssrc) || secondaries.has(ssrc)) continue
    seen.add(ssrc)
    const rtxSsrc = fid.get(ssrc)
    streams.push(rtxSsrc === undefined ? { ssrc } : { ssrc, rtxSsrc })
  }
  return streams
}

const ridsOf = (m: MediaDescription): Array<string> =>
  m.simulcast === undefined ? [] : (m.rids ?? []).filter((r) => r.direction === "send").map((r) => String(r.id))

const mediaOf = (session: SessionDescription) => (m: MediaDescription, index: number): OfferMedia => {
  const cname = (m.ssrcs ?? []).find((s) => s.attribute === "cname")?.value
  return {
    index,
    kind: m.type,
    mid: m.mid === undefined ? String(index) : String(m.mid),
    direction: directionOf(m, session),
    protocol: m.protocol,
    formats: m.payloads ?? "",
    codecs: codecsOf(m),
    extensions: (m.ext ?? []).map((e) => ({ id: e.value, uri: e.uri })),
    streams: streamsOf(m),
    rids: ridsOf(m),
    ...(cname === undefined ? {} : { cname }),
    rtcpRsize: m.rtcpRsize !== undefined
  }
}

const setups = ["actpass", "active", "passive"] as const
const isSetup = (s: string | undefined): s is Offer["setup"] => setups.some((v) => v === s)

/**
 * An SDP offer as far as a WHIP or WHEP endpoint needs it, or what makes it unusable (named, so
 * the client can fix it): not SDP; no m-line; no BUNDLE group; no ICE credentials; no DTLS fingerprint.
 * Whether its m-lines carry something this service takes is decided against the router's codecs.
 */
export const parseOffer = (text: string): Parsed<Offer> => {
  if (!/^v=0\r?\n/.test(text)) return fail("malformed", "the body is not an SDP session description (it must start with v=0)")
  let session: SessionDescription
  try {
    session = parse(text)
  } catch (e) {
    return fail("malformed", `the SDP could not be parsed: ${e instanceof Error ? e.message : String(e)}`)
  }
  const media = session.media ?? []
  if (media.length === 0) return fail("unusable", "the offer has no m-line (no audio or video)")
  const bundle = (session.groups ?? []).find((g) => g.type === "BUNDLE")
  const first = media[0]
  const ufrag = session.iceUfrag ?? first?.iceUfrag
  const pwd = session.icePwd ?? first?.icePwd
  if (ufrag === undefined || pwd === undefined) return fail("unusable", "the offer has no a=ice-ufrag / a=ice-pwd")
  const fingerprint = session.fingerprint ?? media.find((m) => m.fingerprint !== undefined)?.fingerprint
  if (fingerprint === undefined) return fail("unusable", "the offer has no a=fingerprint (DTLS is required)")
  const setup = first?.setup ?? session.setup
  return {
    ok: true,
    value: {
      ice: { ufrag, pwd },
      fingerprint: { algorithm: fingerprint.type.toLowerCase(), value: fingerprint.hash },
      setup: isSetup(setup) ? setup : "actpass",
      bundle: bundle === undefined ? [] : String(bundle.mids).split(/\s+/).filter((mid) => mid.length > 0),
      media: media.map(mediaOf(session))
    }
  }
}

/**
 * Why the m-lines to be answered cannot share the resource's one transport: more than one of
 * them, and not all in the BUNDLE group (RFC 9725 §4.2 requires bundling). undefined when they can.
 */
export const unbundled = (offer: Offer, answered: ReadonlyArray<OfferMedia>): string | undefined => {
  if (answered.length <= 1) return undefined
  const outside = answered.filter((m) => !offer.bundle.includes(m.mid))
  if (outside.length === 0) return undefined
  return offer.bundle.length === 0
    ? "the offer has no a=group:BUNDLE; RFC 9725 requires every m-line bundled on one transport"
    : `m-line mid ${outside.map((m) => m.mid).join(", ")} is not in the BUNDLE group`
}
