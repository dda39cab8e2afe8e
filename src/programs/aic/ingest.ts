import { Context, Effect, FiberMap, Layer, Option } from "effect"
import type { types } from "mediasoup"
import { AicMetrics } from "../../layers/aicore/metrics.ts"
import { AiCore } from "../../layers/AiCore.ts"
import { AppConfig } from "../../layers/Config.ts"
import { MediaServer, type ProducerAdded } from "../../layers/MediaServer.ts"
import { Sessions } from "../../layers/SessionStore.ts"
import type { VideoCodec } from "../../schemas/aicore.ts"
import { consumerSource, openUdpSink } from "./io.ts"
import { makeAicPipeline, runToSink } from "./pipeline.ts"
import type { SessionId } from "../../schemas/ids.ts"

const codecOfMime: Readonly<Record<string, VideoCodec>> = {
  "video/h264": "H264",
  "video/h265": "H265",
  "video/vp8": "VP8",
  "video/vp9": "VP9"
}

/** Payload type -> codec of a consumer's video codecs (RTX and others left out). */
const codecsOf = (parameters: types.RtpParameters): ReadonlyMap<number, VideoCodec> =>
  new Map(parameters.codecs.flatMap((c) => {
    const codec = codecOfMime[c.mimeType.toLowerCase()]
    return codec === undefined ? [] : [[c.payloadType, codec] as const]
  }))

/**
 * The AIC pipeline on live sessions: every video producer (signaling's produce attaches it) of a
 * session whose config has `aic` (with ENABLE_AIC on) is consumed server-side over a DirectTransport and run through the AIC
 * pipeline; the processed RTP goes out over UDP to AIC_FORWARD_TARGET. Not back into the
 * router: mediasoup refuses header extension URIs it does not know, and rewrites the
 * extensions of packets on the way in keeping only the ones it knows, so the AIC element cannot reach a router's consumers (README, "What survives
 * mediasoup"). A pipeline ends with its consumer (producer closed, session ended) or at shutdown.
 */
export class AicIngest extends Context.Service<AicIngest, {
  /** Starts the pipeline of one producer (idempotent per producer; ignores audio, sessions without `aic`). */
  readonly attach: (sessionId: SessionId, producer: ProducerAdded) => Effect.Effect<void>
}>()("auralink/AicIngest") {
  static readonly layer = Layer.effect(
    AicIngest,
    Effect.gen(function*() {
      const media = yield* MediaServer
      const ai = yield* AiCore
      const metrics = yield* AicMetrics
      const sessions = yield* Sessions
      const { aic, features } = yield* AppConfig
      const pipelines = yield* FiberMap.make<string>()

      const pipeline = (
        sessionId: SessionId,
        producer: Extract<ProducerAdded, { readonly kind: "video" }>,
        target: { readonly host: string; readonly port: number }
      ) =>
        Effect.gen(function*() {
          const { consumer } = yield* media.createDirectConsumer(sessionId, producer.id)
          const taken = consumer.rtpParameters.headerExtensions?.find((e) => e.id === aic.extensionId)
          if (taken !== undefined) {
            return yield* Effect.logWarning(`AIC: extension id ${aic.extensionId} is taken by ${taken.uri} on this stream; set AIC_EXTENSION_ID to a free id`)
          }
          const sink = yield* openUdpSink(target.host, target.port)
          const client = yield* ai.openSession(sessionId)
          yield* Effect.acquireRelease(Effect.sync(metrics.pipelineStarted), () => Effect.sync(metrics.pipelineEnded))
          const running = yield* makeAicPipeline(consumerSource(consumer), {
            ai: client,
            metrics,
            mode: aic.mode,
            extensionId: aic.extensionId,
            codecs: codecsOf(consumer.rtpParameters),
            queueCapacity: aic.queueCapacity
          })
          yield* Effect.logInfo(`AIC pipeline started (${aic.mode}) -> udp ${target.host}:${target.port}`)
          yield* runToSink(running, sink)
          const stats = running.stats()
          yield* Effect.logInfo("AIC pipeline ended").pipe(Effect.annotateLogs({
            received: stats.received,
            forwarded: stats.forwarded,
            frames: stats.frames,
            compressed: stats.compressed,
            malformed: stats.malformed,
            overflow: stats.overflow,
            sendErrors: sink.errors()
          }))
        }).pipe(
          Effect.scoped,
          Effect.catchCause((cause) => Effect.logWarning("AIC pipeline ended with an error", cause)),
          Effect.annotateLogs({ sessionId, producerId: producer.id, path: "aic" })
        )

      const attach = (sessionId: SessionId, producer: ProducerAdded) =>
        Effect.gen(function*() {
          if (producer.kind !== "video" || !features.aic || Option.isNone(aic.forwardTarget)) return
          const session = yield* sessions.findFresh(sessionId)
          if (Option.isNone(session) || !session.value.config.aic) return
          yield* FiberMap.run(pipelines, producer.id, pipeline(sessionId, producer, aic.forwardTarget.value), { onlyIfMissing: true })
        }).pipe(Effect.catch((error) => Effect.logWarning("AIC: could not read the session; its video is not processed", error)))

      if (features.aic && Option.isNone(aic.forwardTarget)) {
        yield* Effect.logInfo("AIC: AIC_FORWARD_TARGET unset; live video producers are not run through the AIC pipeline")
      }
      return { attach }
    })
  )
}
