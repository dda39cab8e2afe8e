import type { types } from "mediasoup"
import type { AnsweredMedia } from "./answer.ts"
import { answeredCodecs, chooseCodec, producerParameters, sharedExtensions } from "./codecs.ts"
import { type Offer, type OfferMedia, type Parsed, unbundled } from "./offer.ts"

/** One m-line of a WHIP offer that becomes a producer, and how it is answered. */
export interface PlannedProducer {
  readonly media: OfferMedia
  readonly kind: "audio" | "video"
  readonly rtpParameters: types.RtpParameters
  readonly answer: AnsweredMedia
}

export const isSending = (m: OfferMedia) => (m.kind === "audio" || m.kind === "video") && (m.direction === "sendonly" || m.direction === "sendrecv")

/** How an m-line's codecs read in an error: `audio/opus, audio/G722`. */
export const offeredCodecs = (m: OfferMedia) => [...new Set(m.codecs.map((c) => c.mimeType))].join(", ") || "none"

/**
 * Which m-lines of a WHIP offer become producers (each sending audio or video m-line with a codec
 * the router has; the others are answered rejected), or why none can (unusable, named).
 */
export const planIngest = (offer: Offer, caps: types.RtpCapabilities): Parsed<ReadonlyArray<PlannedProducer | undefined>> => {
  const planned = offer.media.map((m): PlannedProducer | undefined => {
    if (!isSending(m)) return undefined
    const chosen = chooseCodec(m, caps)
    if (chosen === undefined) return undefined
    return {
      media: m,
      kind: m.kind === "audio" ? "audio" : "video",
      rtpParameters: producerParameters(m, chosen, caps),
      answer: { accept: true, direction: "recvonly", codecs: answeredCodecs(chosen), extensions: sharedExtensions(m, caps), rids: m.rids }
    }
  })
  const accepted = planned.flatMap((p) => p === undefined ? [] : [p.media])
  const detail = unbundled(offer, accepted)
  if (detail !== undefined) return { ok: false, problem: { kind: "unusable", detail } }
  if (accepted.length > 0) return { ok: true, value: planned }
  const sending = offer.media.filter(isSending)
  if (sending.length === 0) {
    const lines = offer.media.map((m) => `${m.kind} ${m.direction}`).join(", ")
    return {
      ok: false,
      problem: { kind: "unusable", detail: `the offer sends no audio or video (its m-lines: ${lines}); WHIP takes sendonly audio and/or video` }
    }
  }
  const ours = [...new Set((caps.codecs ?? []).filter((c) => !/\/rtx$/i.test(c.mimeType)).map((c) => c.mimeType))].join(", ")
  const theirs = sending.map((m) => `${m.kind}: ${offeredCodecs(m)}`).join("; ")
  return { ok: false, problem: { kind: "unusable", detail: `no common codec: the offer has ${theirs}; this service receives ${ours}` } }
}

/** The answers of a plan, rejected m-lines included. */
export const plannedAnswers = (planned: ReadonlyArray<PlannedProducer | undefined>): ReadonlyArray<AnsweredMedia> =>
  planned.map((p) => p?.answer ?? { accept: false })
