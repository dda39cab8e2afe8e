import { Context, Deferred, Effect, FiberMap, Layer, Option, PubSub, Scope, Stream } from "effect"
import type { types } from "mediasoup"
import { AudioMetrics } from "../../layers/audio/metrics.ts"
import { AudioDecoders } from "../../layers/AudioDecoders.ts"
import { AudioSink } from "../../layers/AudioSink.ts"
import { consumerMessages } from "../../layers/media/messages.ts"
import { AppConfig } from "../../layers/Config.ts"
import { MediaServer, type ProducerAdded } from "../../layers/MediaServer.ts"
import { Sessions } from "../../layers/SessionStore.ts"
import type { Transcript } from "../../schemas/asr.ts"
import type { ServerEvent } from "../../schemas/audio.ts"
import { type AudioSource, dataChannelIngest, rtpIngest, runToSink } from "./pipeline.ts"

/** The data-channel label a client gives its PCM data producer (chunk layout: src/schemas/audio.ts). */
export const PCM_DATA_LABEL = "audio-pcm"

/**
 * Chunks buffered per producer between receipt and the sink: 10 s of 20 ms chunks (at most 320 KB).
 * A burst of RTP arrives in one synchronous run, before the sink can take any (the first stream's
 * 266 packets sent at once lost the oldest to overflow at 100).
 */
const BUFFER_CHUNKS = 500

/** The longest `attach` waits for the consumer to be listened to (a guard: it takes a few ms). */
const ATTACH_WAIT_MS = 5000

/**
 * Flowing audio is activity: the session's idle clock is reset at most this often, and at least
 * four times per idle timeout (so a 10 s timeout never runs out between two resets).
 */
const TOUCH_EVERY_MS = 10_000
const touchEveryMs = (idleTimeoutSeconds: number) => Math.min(TOUCH_EVERY_MS, (idleTimeoutSeconds * 1000) / 4)

/** A mediasoup consumer's messages as an ingest source (data channel: with the events channel for replies). */
const emitterSource = (
  emitter: types.Consumer | types.DataConsumer,
  event: "rtp" | "message",
  reply?: (text: string) => void
): AudioSource => ({
  ...(reply === undefined ? {} : { reply }),
  subscribe: consumerMessages(emitter, event)
})

/**
 * Audio ingress: every audio producer (Opus RTP) and every `audio-pcm` data producer of a session
 * is consumed server-side, turned into validated 16 kHz chunks and sent to the AudioSink (ASR
 * gateway or WAV recording). Final transcripts are appended to the session context; all
 * transcripts are published per session for the events endpoint and sent on the session's events
 * data channel, where rejected PCM chunks are answered too. A producer's pipeline ends when
 * its consumer closes (the session ended, the producer or transport closed) or at shutdown.
 */
export class AudioIngest extends Context.Service<AudioIngest, {
  /**
   * Starts the pipeline of one producer (idempotent per producer id; ignores video and other data
   * labels); returns once its consumer exists and is listened to, so no early packet is missed.
   */
  readonly attach: (sessionId: string, producer: ProducerAdded) => Effect.Effect<void>
  /** The session's transcripts from now on. */
  readonly transcripts: (sessionId: string) => Effect.Effect<Stream.Stream<Transcript>, never, Scope.Scope>
}>()("auralink/AudioIngest") {
  static readonly layer = Layer.effect(
    AudioIngest,
    Effect.gen(function*() {
      const media = yield* MediaServer
      const sink = yield* AudioSink
      const sessions = yield* Sessions
      const { audio: audioSettings, sessions: sessionSettings } = yield* AppConfig
      const services = yield* Effect.context<AudioMetrics | AudioDecoders>()
      const pipelines = yield* FiberMap.make<string>()
      const published = yield* PubSub.unbounded<Transcript>()

      const recordTranscript = (transcript: Transcript) =>
        Effect.andThen(
          Effect.andThen(
            Effect.sync(() => media.sendEvent(transcript.sessionId, JSON.stringify({ type: "transcript", ...transcript } satisfies ServerEvent))),
            PubSub.publish(published, transcript)
          ),
          transcript.isFinal
            ? sessions.appendContext(transcript.sessionId, { role: "user", text: transcript.text }, sessionSettings.contextCap).pipe(
              Effect.catch((error) => Effect.logWarning("transcript not added to the session context", error))
            )
            : Effect.void
        )

      const sourceOf = (sessionId: string, producer: ProducerAdded) =>
        producer.kind === "audio"
          ? Effect.flatMap(media.createDirectConsumer(sessionId, producer.id), ({ consumer }) =>
            rtpIngest(emitterSource(consumer, "rtp"), {
              capacity: BUFFER_CHUNKS,
              latency: "manual",
              jitterBufferMs: audioSettings.jitterBufferMs,
              decoder: { payloadType: consumer.rtpParameters.codecs[0]?.payloadType ?? 100 }
            }))
          : Effect.flatMap(media.createDataConsumer(sessionId, producer.id), ({ dataConsumer }) =>
            dataChannelIngest(emitterSource(dataConsumer, "message", (text) => media.sendEvent(sessionId, text)), {
              capacity: BUFFER_CHUNKS,
              latency: "manual"
            }))

      const pipeline = (sessionId: string, producer: ProducerAdded, listening: Deferred.Deferred<void>) =>
        Effect.gen(function*() {
          const audio = yield* sourceOf(sessionId, producer)
          yield* Deferred.succeed(listening, undefined)
          const stream = yield* sink.openStream(sessionId)
          yield* Effect.forkScoped(Stream.runForEach(stream.transcripts, recordTranscript))
          const session = yield* Effect.orDie(sessions.find(sessionId))
          const everyMs = touchEveryMs(Option.match(session, { onNone: () => sessionSettings.idleTimeoutSeconds, onSome: (s) => s.config.idleTimeoutSeconds }))
          let touched = Date.now()
          const keepAlive = Effect.suspend(() => {
            if (Date.now() - touched < everyMs) return Effect.void
            touched = Date.now()
            return Effect.ignore(sessions.touch(sessionId))
          })
          yield* runToSink(audio, (chunks) =>
            Effect.andThen(
              keepAlive,
              Effect.forEach(chunks, (chunk) => Effect.tap(stream.send(chunk), () => Effect.sync(() => audio.delivered(chunk))), { discard: true })
            ))
          yield* stream.close
        }).pipe(
          Effect.scoped,
          Effect.catchCause((cause) => Effect.logWarning("audio pipeline ended with an error", cause)),
          Effect.ensuring(Deferred.succeed(listening, undefined)),
          Effect.annotateLogs({ sessionId, producerId: producer.id, path: producer.kind }),
          Effect.provideContext(services)
        )

      return {
        attach: (sessionId, producer) =>
          producer.kind === "video" || (producer.kind === "data" && producer.label !== PCM_DATA_LABEL)
            ? Effect.void
            : Effect.gen(function*() {
              // Returns once the consumer is created and listened to: the client's first packets, sent as
              // soon as produce answers, find it there (it was created after the answer before).
              const listening = yield* Deferred.make<void>()
              yield* FiberMap.run(pipelines, producer.id, pipeline(sessionId, producer, listening), { onlyIfMissing: true })
              yield* Effect.ignore(Effect.timeout(Deferred.await(listening), ATTACH_WAIT_MS))
            }),
        transcripts: (sessionId) =>
          Effect.map(PubSub.subscribe(published), (subscription) =>
            Stream.fromSubscription(subscription).pipe(Stream.filter((t) => t.sessionId === sessionId)))
      }
    })
  )
}
