import { Effect } from "effect"
import type { types } from "mediasoup"
import { writeAnswer } from "../../media/sdp/answer.ts"
import { planIngest, plannedAnswers } from "../../media/sdp/ingest-plan.ts"
import type { Offer } from "../../media/sdp/offer.ts"
import { MediaServer } from "../../layers/MediaServer.ts"
import type { Principal } from "../../schemas/auth.ts"
import type { SessionId } from "../../schemas/ids.ts"
import { UnusableOffer } from "../../schemas/whip.ts"
import { openSession } from "../signaling/access.ts"
import { withinTransportCap } from "../signaling/limits.ts"
import { makeProducer } from "../signaling/produce.ts"
import { startSession } from "../sessions/start.ts"
import { stopSession } from "../sessions/stop.ts"
import { watchMedia } from "./media-timeout.ts"
import { clientDtls, readOffer, serverSide } from "./offer.ts"
import { newResource, resourcePath, userHolder, WebRtcResources } from "./resources.ts"

/** The producers an offer makes, or the 422 naming why it can make none. */
const plan = (offer: Offer, caps: types.RtpCapabilities) => {
  const planned = planIngest(offer, caps)
  return planned.ok ? Effect.succeed(planned.value) : Effect.fail(new UnusableOffer({ detail: planned.problem.detail }))
}

/**
 * WHIP ingest (RFC 9725): a new session (or the caller's open one) gets one WebRTC transport for the
 * offer; each sending audio/video m-line becomes a producer as a JSON-signaled one does (audio to
 * the ASR gateway or recording, video to the AIC pipeline); the answer is the resource's. A session
 * made here is cancelled again when the offer cannot be served, and nothing is left behind.
 */
export const publishWhip = Effect.fn("whip.publish")(function*(principal: Principal, sessionId: SessionId | undefined, sdp: string) {
  const offer = yield* readOffer(sdp)
  const dtls = yield* clientDtls(offer)
  const media = yield* MediaServer
  // Checked before any session is made: a refused offer changes nothing.
  const planned = yield* plan(offer, media.routerCapabilities)
  const session = sessionId === undefined ? yield* startSession(principal, {}) : yield* openSession(principal, sessionId)
  const id = session.id
  const resources = yield* WebRtcResources
  return yield* Effect.gen(function*() {
    const endpoint = yield* withinTransportCap(id, media.createWebRtcEndpoint(id))
    yield* Effect.gen(function*() {
      yield* media.connectTransport(id, endpoint.id, dtls)
      for (const p of planned) if (p !== undefined) yield* makeProducer(session, endpoint.id, { kind: p.kind, rtpParameters: p.rtpParameters })
    }).pipe(Effect.onError(() => Effect.ignore(media.closeTransport(id, endpoint.id))))
    const answers = plannedAnswers(planned)
    const resource = newResource("whip", id, userHolder(principal), endpoint, offer, answers)
    resources.add(resource)
    yield* resources.background(watchMedia(id, endpoint.id))
    yield* Effect.logInfo("WHIP publisher connected an offer").pipe(
      Effect.annotateLogs({ event: "whip_published", sessionId: id, transportId: endpoint.id, mids: resource.mids })
    )
    return { sessionId: id, location: resourcePath(resource), etag: resource.etag, answer: writeAnswer(offer, answers, serverSide(offer, endpoint)) }
  }).pipe(
    Effect.onError(() => sessionId === undefined ? Effect.ignore(stopSession(principal, id, "WHIP offer refused")) : Effect.void)
  )
})
