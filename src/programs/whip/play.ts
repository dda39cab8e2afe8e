import { Effect, Option } from "effect"
import type { types } from "mediasoup"
import { type AnsweredMedia, writeAnswer } from "../../media/sdp/answer.ts"
import { receiveCapabilities } from "../../media/sdp/codecs.ts"
import type { Offer, OfferCodec, OfferMedia } from "../../media/sdp/offer.ts"
import { AppConfig } from "../../layers/Config.ts"
import { MediaServer } from "../../layers/MediaServer.ts"
import { Sessions } from "../../layers/SessionStore.ts"
import type { ProducerId, SessionId } from "../../schemas/ids.ts"
import { limitReached } from "../../schemas/limits.ts"
import { openStates, sessionClosed, sessionNotFound } from "../../schemas/session.ts"
import { NothingToPlay, UnusableOffer } from "../../schemas/whip.ts"
import { offeredCodecs } from "../../media/sdp/ingest-plan.ts"
import { answeredMids, clientDtls, readOffer, requireBundled, serverSide } from "./offer.ts"
import { newEtag, resourcePath, WebRtcResources } from "./resources.ts"

const isReceiving = (m: OfferMedia) => (m.kind === "audio" || m.kind === "video") && (m.direction === "recvonly" || m.direction === "sendrecv")

/** Each receiving m-line gets the next producer of its kind not yet given to an earlier m-line. */
const pickProducers = (offer: Offer, producers: ReadonlyArray<{ readonly id: ProducerId; readonly kind: "audio" | "video" }>) => {
  const used = new Set<string>()
  return offer.media.map((m) => {
    if (!isReceiving(m)) return undefined
    const producer = producers.find((p) => p.kind === m.kind && !used.has(p.id))
    if (producer !== undefined) used.add(producer.id)
    return producer
  })
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
 * transport of its own, sent with the codecs and payload types the viewer offered. At most
 * WHEP_MAX_VIEWERS per session (429 beyond); 409 when the session has nothing of the kinds asked.
 */
export const playWhep = Effect.fn("whep.play")(function*(holder: string, id: SessionId, sdp: string) {
  const offer = yield* readOffer(sdp)
  const dtls = yield* clientDtls(offer)
  const found = yield* (yield* Sessions).find(id)
  if (Option.isNone(found)) return yield* sessionNotFound(id)
  if (!openStates.includes(found.value.state)) return yield* sessionClosed(found.value.state)
  const { whip } = yield* AppConfig
  const resources = yield* WebRtcResources
  if (resources.ofSession(id).filter((r) => r.kind === "whep").length >= whip.maxViewers) {
    return yield* limitReached("WHEP_MAX_VIEWERS", whip.maxViewers, "WHEP viewers per session")
  }
  const media = yield* MediaServer
  const picks = pickProducers(offer, yield* media.producers(id))
  if (picks.every((p) => p === undefined)) {
    const asked = offer.media.filter(isReceiving).map((m) => m.kind).join(" and ") || "no audio or video"
    return yield* new NothingToPlay({ detail: `the offer asks for ${asked}; session ${id} sends none of it on this instance` })
  }
  yield* requireBundled(offer, offer.media.filter((_, i) => picks[i] !== undefined))
  const endpoint = yield* media.createWebRtcEndpoint(id, "viewer")
  const answers = yield* Effect.gen(function*() {
    yield* media.connectTransport(id, endpoint.id, dtls)
    const made = yield* Effect.forEach(offer.media, (m, i) => {
      const producer = picks[i]
      if (producer === undefined) return Effect.succeed<AnsweredMedia>({ accept: false })
      return media.consume(id, endpoint.id, producer.id, receiveCapabilities(m)).pipe(
        Effect.map((consumer) => answerFor(id, consumer)),
        // No codec in common with what the producer sends: this m-line is refused, the others go on.
        Effect.catchTag("MediaRejected", () => Effect.succeed<AnsweredMedia>({ accept: false }))
      )
    })
    if (made.every((a) => !a.accept)) {
      const offered = offer.media.filter(isReceiving).map((m) => `${m.kind}: ${offeredCodecs(m)}`).join("; ")
      return yield* new UnusableOffer({ detail: `no common codec with what session ${id} sends (the offer takes ${offered})` })
    }
    return made
  }).pipe(Effect.onError(() => Effect.ignore(media.closeTransport(id, endpoint.id))))
  const resource = {
    kind: "whep" as const,
    id: endpoint.id,
    sessionId: id,
    holder,
    mids: answeredMids(offer, answers),
    clientUfrag: offer.ice.ufrag,
    candidates: endpoint.iceCandidates,
    etag: newEtag(),
    createdAt: Date.now()
  }
  resources.add(resource)
  yield* Effect.logInfo("WHEP viewer connected").pipe(Effect.annotateLogs({ event: "whep_playing", sessionId: id, transportId: endpoint.id }))
  return { location: resourcePath(resource), etag: resource.etag, answer: writeAnswer(offer, answers, serverSide(offer, endpoint)) }
})
