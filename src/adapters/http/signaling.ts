import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { AppConfig } from "../../layers/Config.ts"
import { MediaServer } from "../../layers/MediaServer.ts"
import { SessionEvents } from "../../layers/sessions/events.ts"
import { SessionMetrics } from "../../layers/sessions/metrics.ts"
import { Sessions } from "../../layers/SessionStore.ts"
import { AicIngest } from "../../programs/aic/ingest.ts"
import { AudioIngest } from "../../programs/audio/ingest.ts"
import { produce, produceData } from "../../programs/signaling/produce.ts"
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
} from "../../programs/signaling/transports.ts"
import { Api } from "../../schemas/api.ts"
import { capturedServices, principalRunner } from "./captured.ts"

type Services = AppConfig | Sessions | SessionEvents | SessionMetrics | MediaServer | AudioIngest | AicIngest

/** Thin adapters, as the sessions group: the principal from Authentication, SQL failures as defects (500). */
export const SignalingGroup = HttpApiBuilder.group(
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
