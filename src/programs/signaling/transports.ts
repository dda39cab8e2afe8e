import { Effect } from "effect"
import { MediaServer } from "../../layers/MediaServer.ts"
import type { Principal } from "../../schemas/auth.ts"
import type { ConnectPlainTransport, CreatePlainTransport, DtlsParameters } from "../../schemas/webrtc.ts"
import { plainJson } from "../../layers/media/plain-json.ts"
import { openSession } from "./access.ts"
import { withinTransportCap } from "./limits.ts"
import type { SessionId, TransportId } from "../../schemas/ids.ts"

/** Router RTP capabilities of the session (its router is made on first use). */
export const rtpCapabilities = Effect.fn("signaling.rtpCapabilities")(function*(principal: Principal, id: SessionId) {
  yield* openSession(principal, id)
  const caps = yield* (yield* MediaServer).rtpCapabilities(id)
  return { codecs: (caps.codecs ?? []).map(plainJson), headerExtensions: (caps.headerExtensions ?? []).map(plainJson) }
})

export const createWebRtcTransport = Effect.fn("signaling.createWebRtcTransport")(function*(principal: Principal, id: SessionId) {
  yield* openSession(principal, id)
  const media = yield* MediaServer
  return yield* withinTransportCap(id, media.createWebRtcTransport(id))
})

export const createPlainTransport = Effect.fn("signaling.createPlainTransport")(function*(principal: Principal, id: SessionId, options: CreatePlainTransport) {
  yield* openSession(principal, id)
  const media = yield* MediaServer
  return yield* withinTransportCap(id, media.createPlainTransport(id, options))
})

export const connectTransport = Effect.fn("signaling.connect")(
  function*(principal: Principal, id: SessionId, transportId: TransportId, dtlsParameters: DtlsParameters) {
    yield* openSession(principal, id)
    yield* (yield* MediaServer).connectTransport(id, transportId, dtlsParameters)
  }
)

export const restartIce = Effect.fn("signaling.restartIce")(function*(principal: Principal, id: SessionId, transportId: TransportId) {
  yield* openSession(principal, id)
  return { iceParameters: yield* (yield* MediaServer).restartIce(id, transportId) }
})

export const closeTransport = Effect.fn("signaling.closeTransport")(function*(principal: Principal, id: SessionId, transportId: TransportId) {
  yield* openSession(principal, id)
  yield* (yield* MediaServer).closeTransport(id, transportId)
})

export const transportStats = Effect.fn("signaling.transportStats")(function*(principal: Principal, id: SessionId, transportId: TransportId) {
  yield* openSession(principal, id)
  return yield* (yield* MediaServer).transportStats(id, transportId)
})

/** SRTP keying of the sender on a plain transport made with `enableSrtp`. */
export const connectPlainTransport = Effect.fn("signaling.connectPlain")(
  function*(principal: Principal, id: SessionId, transportId: TransportId, request: ConnectPlainTransport) {
    yield* openSession(principal, id)
    yield* (yield* MediaServer).connectPlainTransport(id, transportId, request.srtpParameters)
  }
)

/** The server events data channel (chunk errors, transcripts) on one of the client's WebRTC transports. */
export const openEventsChannel = Effect.fn("signaling.eventsChannel")(function*(principal: Principal, id: SessionId, transportId: TransportId) {
  yield* openSession(principal, id)
  return yield* (yield* MediaServer).openEventsChannel(id, transportId)
})
