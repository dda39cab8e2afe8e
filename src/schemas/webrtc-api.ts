import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { Authentication } from "./auth.ts"
import { SessionId, TransportId } from "./ids.ts"
import { LimitReached } from "./limits.ts"
import { UserRateLimit } from "./rate-limit.ts"
import { SessionClosed, SessionForbidden, SessionNotFound } from "./session.ts"
import {
  ConnectPlainTransport,
  ConnectTransport,
  CreatePlainTransport,
  DataProducerCreated,
  EventsChannel,
  IceRestarted,
  MediaNotFound,
  MediaRejected,
  PlainTransportInfo,
  Produce,
  ProduceData,
  ProducerCreated,
  RtpCapabilities,
  TransportStats,
  WebRtcTransportInfo
} from "./webrtc.ts"

const session = { sessionId: SessionId }
const transport = { sessionId: SessionId, transportId: TransportId }
const access = [SessionNotFound, SessionForbidden, SessionClosed] as const
const media = [...access, MediaNotFound, MediaRejected] as const
const newTransport = [...access, LimitReached] as const
const newProducer = [...media, LimitReached] as const

/** WebRTC (and plain RTP) signaling for the caller's own open session, under the path earlier clients know. */
export class WebRtcApi extends HttpApiGroup.make("webrtc")
  .add(
    HttpApiEndpoint.get("rtpCapabilities", "/:sessionId/rtp-capabilities", { params: session, success: RtpCapabilities, error: access }),
    HttpApiEndpoint.post("createTransport", "/:sessionId/transports", {
      params: session,
      success: WebRtcTransportInfo.pipe(HttpApiSchema.status(201)),
      error: newTransport
    }),
    HttpApiEndpoint.post("connect", "/:sessionId/transports/:transportId/connect", { params: transport, payload: ConnectTransport, error: media }),
    HttpApiEndpoint.post("produce", "/:sessionId/transports/:transportId/produce", {
      params: transport,
      payload: Produce,
      success: ProducerCreated.pipe(HttpApiSchema.status(201)),
      error: newProducer
    }),
    HttpApiEndpoint.post("produceData", "/:sessionId/transports/:transportId/produce-data", {
      params: transport,
      payload: ProduceData,
      success: DataProducerCreated.pipe(HttpApiSchema.status(201)),
      error: newProducer
    }),
    HttpApiEndpoint.post("eventsChannel", "/:sessionId/transports/:transportId/events-channel", {
      params: transport,
      success: EventsChannel.pipe(HttpApiSchema.status(201)),
      error: media
    }),
    HttpApiEndpoint.post("restartIce", "/:sessionId/transports/:transportId/restart-ice", { params: transport, success: IceRestarted, error: media }),
    HttpApiEndpoint.delete("closeTransport", "/:sessionId/transports/:transportId", { params: transport, error: [...access, MediaNotFound] }),
    HttpApiEndpoint.get("stats", "/:sessionId/transports/:transportId/stats", { params: transport, success: TransportStats, error: media }),
    HttpApiEndpoint.post("createPlainTransport", "/:sessionId/plain-transports", {
      params: session,
      payload: CreatePlainTransport,
      success: PlainTransportInfo.pipe(HttpApiSchema.status(201)),
      error: newTransport
    }),
    HttpApiEndpoint.post("connectPlain", "/:sessionId/plain-transports/:transportId/connect", {
      params: transport,
      payload: ConnectPlainTransport,
      error: media
    }),
    HttpApiEndpoint.post("producePlain", "/:sessionId/plain-transports/:transportId/produce", {
      params: transport,
      payload: Produce,
      success: ProducerCreated.pipe(HttpApiSchema.status(201)),
      error: newProducer
    })
  )
  .prefix("/api/webrtc")
  .middleware(UserRateLimit)
  .middleware(Authentication)
  .annotateMerge(OpenApi.annotations({
    title: "WebRTC signaling",
    description: "Router capabilities, WebRTC and plain RTP (optionally SRTP) transports, producers, the server events data channel"
  }))
{}
