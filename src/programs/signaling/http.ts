import { Effect, Layer } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { AppConfig } from "../../layers/Config.ts"
import { AudioMetrics } from "../../layers/audio/metrics.ts"
import { AudioDecoders } from "../../layers/AudioDecoders.ts"
import { AiCore } from "../../layers/AiCore.ts"
import { MediaServer } from "../../layers/MediaServer.ts"
import { SessionEvents } from "../../layers/sessions/events.ts"
import { SessionMetrics } from "../../layers/sessions/metrics.ts"
import { Sessions } from "../../layers/SessionStore.ts"
import { Api } from "../../schemas/api.ts"
import { AicIngest } from "../aic/ingest.ts"
import { AudioIngest } from "../audio/ingest.ts"
import { MediaLifecycleLive } from "../media/lifecycle.ts"
import { SessionServices } from "../sessions/http.ts"
import { produce, produceData } from "./produce.ts"
import {
  closeTransport,
  connectPlainTransport,
  connectTransport,
  createPlainTransport,
  createWebRtcTransport,
  openEventsChannel,
  restartIce,
  rtpCapabilities,
  transportStats
} from "./transports.ts"
import { capturedServices, principalRunner } from "../captured.ts"

type Services = AppConfig | Sessions | SessionEvents | SessionMetrics | MediaServer | AudioIngest | AicIngest

/**
 * The media server with its session lifecycle, audio ingress and the AIC video pipeline (with its
 * AI Core client) over the session services (the AudioSink comes from below);
 * build it once, below the listeners (see SharedServices).
 */
export const MediaServices = Layer.mergeAll(AudioIngest.layer, AicIngest.layer).pipe(
  // Below the ingest layers: released after them (media closes last, as before the program moved out of MediaServer).
  Layer.provideMerge(MediaLifecycleLive),
  Layer.provideMerge(Layer.mergeAll(MediaServer.layer, AiCore.layer)),
  Layer.provide(Layer.mergeAll(SessionServices, AudioMetrics.layer, AudioDecoders.layer))
)

/** Thin adapters, as the sessions group: the principal from Authentication, SQL failures as defects (500). */
const SignalingGroup = HttpApiBuilder.group(
  Api,
  "webrtc",
  Effect.fn(function*(handlers) {
    const run = principalRunner<Services>(yield* capturedServices<Services>())
    return handlers.handleAll({
      rtpCapabilities: ({ params }) => run((p) => rtpCapabilities(p, params.sessionId)),
      createTransport: ({ params }) => run((p) => createWebRtcTransport(p, params.sessionId)),
      connect: ({ params, payload }) => run((p) => connectTransport(p, params.sessionId, params.transportId, payload.dtlsParameters)),
      produce: ({ params, payload }) => run((p) => produce(p, params.sessionId, params.transportId, payload)),
      produceData: ({ params, payload }) => run((p) => produceData(p, params.sessionId, params.transportId, payload)),
      eventsChannel: ({ params }) => run((p) => openEventsChannel(p, params.sessionId, params.transportId)),
      restartIce: ({ params }) => run((p) => restartIce(p, params.sessionId, params.transportId)),
      closeTransport: ({ params }) => run((p) => closeTransport(p, params.sessionId, params.transportId)),
      stats: ({ params }) => run((p) => transportStats(p, params.sessionId, params.transportId)),
      createPlainTransport: ({ params, payload }) => run((p) => createPlainTransport(p, params.sessionId, payload)),
      connectPlain: ({ params, payload }) => run((p) => connectPlainTransport(p, params.sessionId, params.transportId, payload)),
      producePlain: ({ params, payload }) => run((p) => produce(p, params.sessionId, params.transportId, payload))
    })
  })
)

export const SignalingHandlers = SignalingGroup.pipe(Layer.provide(Layer.mergeAll(SessionServices, MediaServices)))
