import { Context, Data, Deferred, Duration, Effect, FiberMap, Layer, Option, PubSub, Schedule, Scheduler, Scope, Stream } from "effect"
import { AudioMetrics } from "../../layers/audio/metrics.ts"
import { AudioDecoders } from "../../layers/AudioDecoders.ts"
import { AudioSink } from "../../layers/AudioSink.ts"
import { consumerRtp, dataConsumerMessages, type MessageHandlers } from "../../layers/media/messages.ts"
import { AppConfig } from "../../layers/Config.ts"
import { MediaServer, type ProducerAdded } from "../../layers/MediaServer.ts"
import { Sessions } from "../../layers/SessionStore.ts"
import type { Transcript } from "../../schemas/asr.ts"
import type { ServerEvent } from "../../schemas/audio.ts"
import { IDLE_TIMEOUT_BOUNDS } from "../../schemas/session.ts"
import { errorMessage } from "../../layers/error-message.ts"
import { SessionEvents } from "../../layers/sessions/events.ts"
import { SessionMetrics } from "../../layers/sessions/metrics.ts"
import { failSession } from "../sessions/fail.ts"
import { makeTranscriptContext } from "./transcript-context.ts"
import { handOverAtOnce } from "../media/scheduler.ts"
import { type AudioSource, AudioSourceError, dataChannelIngest, type ReceivedChunk, rtpIngest } from "./pipeline.ts"
import type { SessionId } from "../../schemas/ids.ts"

/** What the audio path consumes: Opus producers and `audio-pcm` data producers. */
type AudioProducer = Exclude<ProducerAdded, { readonly kind: "video" }>

/** A run of a producer's pipeline failed; `delivered`: it had sent audio to the sink before. */
class AudioPipelineFailed extends Data.TaggedError("AudioPipelineFailed")<{ readonly reason: string; readonly delivered: boolean }> {}

/** What went wrong, in one line (problem details carry theirs in `detail`). */
const describe = (error: unknown): string => {
  if (error instanceof AudioSourceError) return `audio source failed: ${errorMessage(error.cause)}`
  if (typeof error === "object" && error !== null && "detail" in error && typeof error.detail === "string") return error.detail
  return errorMessage(error)
}

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
const emitterSource = (subscribe: (handlers: MessageHandlers) => () => void, reply?: (text: string) => void): AudioSource => ({
  ...(reply === undefined ? {} : { reply }),
  subscribe
})

/**
 * Audio ingress: every audio producer (Opus RTP) and every `audio-pcm` data producer of a session
 * is consumed server-side, turned into validated 16 kHz chunks and sent to the AudioSink (ASR
 * gateway or WAV recording), each producer on its own sink stream. A failed producer pipeline is
 * restarted with backoff; when the restarts run out the session goes to `error`. Final transcripts are appended to the session context; all
 * transcripts are published per session for the events endpoint and sent on the session's events
 * data channel, where rejected PCM chunks are answered too. A producer's pipeline ends when
 * its consumer closes (the session ended, the producer or transport closed) or at shutdown.
 */
export class AudioIngest extends Context.Service<AudioIngest, {
  /**
   * Starts the pipeline of one producer (idempotent per producer id; ignores video and other data
   * labels); returns once its consumer exists and is listened to, so no early packet is missed.
   */
  readonly attach: (sessionId: SessionId, producer: ProducerAdded) => Effect.Effect<void>
  /** The session's transcripts from now on. */
  readonly transcripts: (sessionId: SessionId) => Effect.Effect<Stream.Stream<Transcript>, never, Scope.Scope>
}>()("auralink/AudioIngest") {
  static readonly layer = Layer.effect(
    AudioIngest,
    Effect.gen(function*() {
      const media = yield* MediaServer
      const sink = yield* AudioSink
      const sessions = yield* Sessions
      const { sessions: sessionSettings, audio: audioSettings } = yield* AppConfig
      const services = yield* Effect.context<AudioMetrics | AudioDecoders | Sessions | SessionEvents | SessionMetrics>()
      const restarts = Schedule.max([
        Schedule.min([
          Schedule.exponential(Duration.millis(audioSettings.pipelineRestartBaseMs)),
          Schedule.spaced(Duration.millis(audioSettings.pipelineRestartMaxMs))
        ]).pipe(
          Schedule.jittered
        ),
        Schedule.recurs(audioSettings.pipelineRestarts)
      ])
      const afterDelivery = Schedule.spaced(Duration.millis(audioSettings.pipelineRestartBaseMs))
      const storeRetry = Schedule.max([Schedule.exponential(Duration.millis(200)).pipe(Schedule.jittered), Schedule.recurs(5)])
      const pipelines = yield* FiberMap.make<string>()
      const published = yield* PubSub.unbounded<Transcript>()

      const context = yield* makeTranscriptContext(sessionSettings.contextCap)

      /** `sessionId`: the stream's own session (the transcript's echo of it is plain text). */
      const recordTranscript = (sessionId: SessionId) => (transcript: Transcript) =>
        Effect.andThen(
          transcript.isFinal ? context.append(sessionId, transcript.text) : Effect.void,
          Effect.andThen(
            Effect.sync(() => media.sendEvent(sessionId, JSON.stringify({ type: "transcript", ...transcript } satisfies ServerEvent))),
            PubSub.publish(published, transcript)
          )
        )

      const sourceOf = (sessionId: SessionId, producer: AudioProducer) =>
        producer.kind === "audio"
          ? Effect.flatMap(media.createDirectConsumer(sessionId, producer.id), ({ consumer }) =>
            rtpIngest(emitterSource(consumerRtp(consumer)), {
              capacity: BUFFER_CHUNKS,
              latency: "manual",
              jitterBufferMs: audioSettings.jitterBufferMs,
              decoder: { payloadType: consumer.rtpParameters.codecs[0]?.payloadType ?? 100 }
            }))
          : Effect.flatMap(media.createDataConsumer(sessionId, producer.id), ({ dataConsumer }) =>
            dataChannelIngest(
              emitterSource(dataConsumerMessages(dataConsumer), (text) => media.sendEvent(sessionId, text)),
              {
                capacity: BUFFER_CHUNKS,
                latency: "manual"
              }
            ))

      /** One run of a producer's pipeline: source -> sink until the source ends (normal) or something fails. */
      const attempt = (sessionId: SessionId, producer: AudioProducer, listening: Deferred.Deferred<void>) =>
        Effect.suspend(() => {
          let delivered = false
          return Effect.gen(function*() {
            const audio = yield* sourceOf(sessionId, producer)
            yield* Deferred.succeed(listening, undefined)
            const stream = yield* sink.openStream({ sessionId, producerId: producer.id, path: producer.kind === "audio" ? "rtp" : "datachannel" })
            yield* Effect.forkScoped(Stream.runForEach(stream.transcripts, recordTranscript(sessionId)))
            // The store is only for the keep-alive, and audio never waits for it (a stalled or failing
            // database must not stall or stop the audio): the pace starts at the shortest idle timeout
            // and follows the session's once it is read; a refresh runs beside the audio, one at a time.
            let everyMs = touchEveryMs(IDLE_TIMEOUT_BOUNDS.minimum)
            yield* Effect.forkScoped(
              sessions.find(sessionId).pipe(
                Effect.tap((found) => Effect.sync(() => Option.map(found, (s) => everyMs = touchEveryMs(s.config.idleTimeoutSeconds)))),
                Effect.ignore
              )
            )
            let touched = Date.now()
            let touching = false
            const runFork = Effect.runForkWith(yield* Effect.context<Scope.Scope>())
            const keepAlive = () => {
              if (touching || Date.now() - touched < everyMs) return
              touched = Date.now()
              touching = true
              runFork(Effect.forkScoped(sessions.touch(sessionId).pipe(Effect.ignore, Effect.ensuring(Effect.sync(() => touching = false)))))
            }
            const handedOver = (chunk: ReceivedChunk) => {
              delivered = true
              audio.delivered(chunk)
            }
            const offer = stream.offer
            yield* audio.toSink(
              (chunks) =>
                Effect.andThen(
                  Effect.sync(keepAlive),
                  Effect.forEach(chunks, (chunk) => Effect.map(stream.send(chunk), () => handedOver(chunk)), { discard: true })
                ),
              // Straight from the source's callback while the sink keeps up (no fiber hop per packet).
              offer === undefined ? undefined : (chunk) => {
                if (!offer(chunk)) return false
                handedOver(chunk)
                keepAlive()
                return true
              }
            )
            yield* stream.close
          }).pipe(
            // attach waits for the consumer; a run that fails before it must not hold the request.
            Effect.ensuring(Deferred.succeed(listening, undefined)),
            Effect.scoped,
            // The producer or the session's media is gone: the pipeline is over, nothing to restart.
            Effect.catchTag("MediaNotFound", () => Effect.void),
            // Anything else (typed or a defect) fails this run; the supervisor below decides what follows.
            Effect.catch((error) => Effect.die(error)),
            Effect.catchDefect((defect) => {
              const reason = describe(defect)
              return Effect.andThen(Effect.logWarning(`audio pipeline failed: ${reason}`), Effect.fail(new AudioPipelineFailed({ reason, delivered })))
            })
          )
        })

      /** The session fails with the reason; the client hears it on the events channel (and SSE, as the state change). */
      const giveUp = (sessionId: SessionId, producer: AudioProducer, reason: string) =>
        Effect.gen(function*() {
          const detail = `audio pipeline of producer ${producer.id} failed: ${reason}`
          yield* Effect.logError(`${detail}; the session goes to error`)
          media.sendEvent(
            sessionId,
            JSON.stringify({ type: "session_error", reason: "audio_pipeline_failed", producerId: producer.id, detail } satisfies ServerEvent)
          )
          yield* failSession(sessionId, detail).pipe(
            // The store may be what failed: try a few times; a session that has already ended stays as it is.
            Effect.retry({ schedule: storeRetry, while: (e: { readonly _tag: string }) => e._tag !== "IllegalTransition" && e._tag !== "SessionNotFound" }),
            Effect.catchTag("IllegalTransition", () => Effect.void),
            Effect.catchCause((cause) => Effect.logError("could not move the session to error", cause))
          )
        })

      /**
       * A producer's pipeline, restarted after a failure with jittered exponential backoff
       * (AUDIO_PIPELINE_RESTARTS in a row; a run that delivered audio starts the count again);
       * beyond that its session goes to `error`.
       */
      const pipeline = (sessionId: SessionId, producer: AudioProducer, listening: Deferred.Deferred<void>) =>
        Effect.retry(attempt(sessionId, producer, listening), { schedule: restarts, while: (e) => !e.delivered }).pipe(
          // A run that delivered audio starts the count again (the inner retry's schedule is fresh on every outer one).
          Effect.retry({ schedule: afterDelivery, while: (e) => e.delivered }),
          Effect.catch((e) => giveUp(sessionId, producer, e.reason)),
          Effect.annotateLogs({ sessionId, producerId: producer.id, path: producer.kind }),
          // Its fibers, and the sink's it starts (the ASR stream's pump), hand over without event-loop turns.
          Effect.provideService(Scheduler.Scheduler, handOverAtOnce),
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
          Effect.map(PubSub.subscribe(published), (subscription) => Stream.fromSubscription(subscription).pipe(Stream.filter((t) => t.sessionId === sessionId)))
      }
    })
  )
}
