import { Effect, Option } from "effect"
import type { types } from "mediasoup"
import { type AnsweredMedia, writeAnswer } from "../../media/sdp/answer.ts"
import { chooseCodec, receiveCapabilities } from "../../media/sdp/codecs.ts"
import type { Offer, OfferCodec, OfferMedia } from "../../media/sdp/offer.ts"
import { AppConfig } from "../../layers/Config.ts"
import { MediaServer } from "../../layers/MediaServer.ts"
import { Sessions } from "../../layers/SessionStore.ts"
import type { ProducerId, SessionId } from "../../schemas/ids.ts"
import { limitReached } from "../../schemas/limits.ts"
import { openStates, sessionClosed, sessionNotFound } from "../../schemas/session.ts"
import { NothingToPlay, UnusableOffer } from "../../schemas/whip.ts"
import { offeredCodecs } from "../../media/sdp/ingest-plan.ts"
import { clientDtls, readOffer, requireBundled, serverSide } from "./offer.ts"
import { newResource, resourcePath, WebRtcResources } from "./resources.ts"

const isReceiving = (m: OfferMedia) => (m.kind === "audio" || m.kind === "video") && (m.direction === "recvonly" || m.direction === "sendrecv")

interface Pick {
  readonly producer: ProducerId
  /** The viewer's codec for it, at the viewer's payload type. */
  readonly codec: types.RouterRtpCodecCapability
}

/** The offered codec (not RTX) that is the producer's own, as a router codec at the offered payload type. */
const viewerCodec = (m: OfferMedia, kind: "audio" | "video", codec: types.RtpCodecParameters): types.RouterRtpCodecCapability | undefined => {
  const own: types.RtpCodecCapability = {
    kind,
    mimeType: codec.mimeType,
    preferredPayloadType: codec.payloadType,
    clockRate: codec.clockRate,
    ...(codec.channels === undefined ? {} : { channels: codec.channels }),
    parameters: codec.parameters ?? {}
  }
  const chosen = chooseCodec(m, { codecs: [own] })
  if (chosen === undefined) return undefined
  const c = chosen.codec
  return {
    kind,
    mimeType: own.mimeType,
    clockRate: c.clockRate,
    ...(c.channels === undefined ? {} : { channels: c.channels }),
    parameters: { ...c.parameters },
    preferredPayloadType: c.payloadType
  }
}

/**
 * Each receiving m-line gets the next producer of its kind not yet given to an earlier m-line
 * whose codec the viewer offered (undefined: the m-line is refused).
 */
const pickProducers = (
  offer: Offer,
  producers: ReadonlyArray<{ readonly id: ProducerId; readonly kind: "audio" | "video"; readonly codec: types.RtpCodecParameters | undefined }>
) => {
  const used = new Set<string>()
  return offer.media.map((m): Pick | undefined => {
    if (!isReceiving(m)) return undefined
    for (const p of producers) {
      if (p.kind !== m.kind || used.has(p.id) || p.codec === undefined) continue
      const codec = viewerCodec(m, p.kind, p.codec)
      if (codec === undefined) continue
      used.add(p.id)
      return { producer: p.id, codec }
    }
    return undefined
  })
}

/** The viewer's receive capabilities for an m-line, without RTX (its router would give RTX other payload types than the offer's). */
const withoutRtx = (m: OfferMedia): types.RtpCapabilities => {
  const caps = receiveCapabilities(m)
  return { ...caps, codecs: (caps.codecs ?? []).filter((c) => !/\/rtx$/i.test(c.mimeType)) }
}

/** A consumer's codecs as the answer states them (the payload types it sends with). */
const sentCodecs = (consumer: types.Consumer): ReadonlyArray<OfferCodec> =>
  consumer.rtpParameters.codecs.map((c) => ({
    payloadType: c.payloadType,
    mimeType: c.mimeType,
    clockRate: c.clockRate,
    ...(c.channels === undefined ? {} : { channels: c.channels }),
    parameters: Object.fromEntries(Object.entries(c.parameters ?? {}).flatMap(([k, v]) => typeof v === "string" || typeof v === "number" ? [[k, v]] : [])),
    rtcpFeedback: (c.rtcpFeedback ?? []).map((fb) => ({ type: fb.type, parameter: fb.parameter ?? "" }))
  }))

const answerFor = (id: SessionId, consumer: types.Consumer): AnsweredMedia => {
  const [encoding] = consumer.rtpParameters.encodings ?? []
  return {
    accept: true,
    direction: "sendonly",
    codecs: sentCodecs(consumer),
    extensions: (consumer.rtpParameters.headerExtensions ?? []).map((e) => ({ id: e.id, uri: e.uri })),
    sent: {
      ssrc: encoding?.ssrc ?? 0,
      ...(encoding?.rtx?.ssrc === undefined ? {} : { rtxSsrc: encoding.rtx.ssrc }),
      cname: consumer.rtpParameters.rtcp?.cname ?? id,
      streamId: id,
      trackId: consumer.id
    }
  }
}

/**
 * WHEP playback: a viewer (already authorised for session `id` as `holder`) offers receive-only
 * m-lines; each gets a consumer of the session's next producer of its kind, on one WebRTC
 * transport of its own, on a router of its own made at the payload types the viewer offered (a
 * consumer sends with its router's; browsers drop any other). At most WHEP_MAX_VIEWERS per
 * session (429 beyond); 409 when the session has nothing of the kinds asked; 422 when no codec is shared.
 */
export const playWhep = Effect.fn("whep.play")(function*(holder: string, id: SessionId, sdp: string) {
  const offer = yield* readOffer(sdp)
  const dtls = yield* clientDtls(offer)
  const found = yield* (yield* Sessions).find(id)
  if (Option.isNone(found)) return yield* sessionNotFound(id)
  if (!openStates.includes(found.value.state)) return yield* sessionClosed(found.value.state)
  const { whip } = yield* AppConfig
  const resources = yield* WebRtcResources
  if (!(yield* resources.holdViewerPlace(id, whip.maxViewers))) {
    return yield* limitReached("WHEP_MAX_VIEWERS", whip.maxViewers, "WHEP viewers per session")
  }
  const media = yield* MediaServer
  const producers = yield* media.producers(id)
  const asked = offer.media.filter(isReceiving)
  if (!asked.some((m) => producers.some((p) => p.kind === m.kind))) {
    const kinds = asked.map((m) => m.kind).join(" and ") || "no audio or video"
    return yield* new NothingToPlay({ detail: `the offer asks for ${kinds}; session ${id} sends none of it on this instance` })
  }
  const picks = pickProducers(offer, producers)
  if (picks.every((p) => p === undefined)) {
    const sent = [...new Set(producers.map((p) => p.codec?.mimeType ?? p.kind))].join(", ")
    const offered = asked.map((m) => `${m.kind}: ${offeredCodecs(m)}`).join("; ")
    return yield* new UnusableOffer({ detail: `no common codec: session ${id} sends ${sent}; the offer takes ${offered}` })
  }
  yield* requireBundled(offer, offer.media.filter((_, i) => picks[i] !== undefined))
  const chosen = picks.flatMap((p) => p === undefined ? [] : [p])
  const codecs = [...new Map(chosen.map((p) => [p.codec.preferredPayloadType, p.codec])).values()]
  const { endpoint, piped } = yield* media.createViewerEndpoint(id, codecs, chosen.map((p) => p.producer))
  const answers = yield* Effect.gen(function*() {
    yield* media.connectTransport(id, endpoint.id, dtls)
    return yield* Effect.forEach(offer.media, (m, i) => {
      const pick = picks[i]
      const source = pick === undefined ? undefined : piped.get(pick.producer)
      if (source === undefined) return Effect.succeed<AnsweredMedia>({ accept: false })
      return Effect.map(media.consume(id, endpoint.id, source, withoutRtx(m)), (consumer) => answerFor(id, consumer))
    })
  }).pipe(Effect.onError(() => Effect.ignore(media.closeTransport(id, endpoint.id))))
  const resource = newResource("whep", id, holder, endpoint, offer, answers)
  resources.add(resource)
  yield* Effect.logInfo("WHEP viewer connected").pipe(Effect.annotateLogs({ event: "whep_playing", sessionId: id, transportId: endpoint.id }))
  return { location: resourcePath(resource), etag: resource.etag, answer: writeAnswer(offer, answers, serverSide(offer, endpoint)) }
}, Effect.scoped)
