import { Effect, Fiber, Layer, Result, Schedule } from "effect"
import { createSocket, type Socket } from "node:dgram"
import { AicMetrics } from "../../src/layers/aicore/metrics.ts"
import { AiCore } from "../../src/layers/AiCore.ts"
import { AppConfig } from "../../src/layers/Config.ts"
import { Health } from "../../src/layers/Health.ts"
import { Metrics } from "../../src/layers/Metrics.ts"
import type { VideoCodec } from "../../src/schemas/aicore.ts"
import { udpSink, udpSource } from "../../src/programs/aic/io.ts"
import { type AicPipelineStats, makeAicPipeline, runToSink } from "../../src/programs/aic/pipeline.ts"
import { parseRtp, type RtpPacket } from "../../src/media/rtp.ts"
import { VIDEO_PAYLOAD_TYPES } from "./ffmpeg-video.ts"

/** AiCore (with AicMetrics), Health and Metrics on a config of `env` over quiet defaults. */
export const aicLayer = (env: Record<string, string>) =>
  AiCore.layer.pipe(
    Layer.provideMerge(Layer.mergeAll(Health.layer, Metrics.layer)),
    Layer.provideMerge(AppConfig.layerFrom({ LOG_LEVEL: "error", ...env }))
  )

export type AicLayerServices = Layer.Success<ReturnType<typeof aicLayer>>

/** Every video payload type of the test encodes -> its codec. */
export const VIDEO_CODECS: ReadonlyArray<VideoCodec> = ["H264", "H265", "VP8", "VP9"]
export const testCodecs: ReadonlyMap<number, VideoCodec> = new Map(VIDEO_CODECS.map((codec) => [VIDEO_PAYLOAD_TYPES[codec], codec]))

export const parseOrDie = (bytes: Uint8Array): RtpPacket => {
  const parsed = parseRtp(bytes)
  if (Result.isFailure(parsed)) throw new Error(`not RTP: ${parsed.failure.detail}`)
  return parsed.success
}

/** Datagrams (or things carrying one) grouped by RTP timestamp, in order (one group per frame). */
export function framesOf(datagrams: ReadonlyArray<Uint8Array>): Array<Array<Uint8Array>>
export function framesOf<A>(items: ReadonlyArray<A>, bytesOf: (item: A) => Uint8Array): Array<Array<A>>
export function framesOf<A>(items: ReadonlyArray<A>, bytesOf?: (item: A) => Uint8Array): Array<Array<A>> {
  const groups: Array<Array<A>> = []
  let last: number | undefined
  for (const d of items) {
    const ts = parseRtp(bytesOf === undefined ? asBytes(d) : bytesOf(d))
    const timestamp = Result.isSuccess(ts) ? ts.success.timestamp : -1
    if (timestamp !== last || groups.length === 0) groups.push([])
    groups[groups.length - 1]!.push(d)
    last = timestamp
  }
  return groups
}

const asBytes = (item: unknown): Uint8Array => {
  if (!(item instanceof Uint8Array)) throw new Error("framesOf: not bytes; give bytesOf")
  return item
}

/** A UDP socket on 127.0.0.1 (any port) with 8 MiB buffers. */
export const bound = (): Promise<Socket> =>
  new Promise((resolve) => {
    const socket = createSocket({ type: "udp4", recvBufferSize: 8 * 1024 * 1024, sendBufferSize: 8 * 1024 * 1024 })
    socket.bind(0, "127.0.0.1", () => resolve(socket))
  })

const sleep = (ms: number) => Effect.promise(() => new Promise((r) => setTimeout(r, ms)))

const until = (check: () => boolean, what: string, seconds = 20) =>
  Effect.suspend(() => check() ? Effect.void : Effect.fail(what)).pipe(
    Effect.retry(Schedule.spaced("5 millis")),
    Effect.timeout(`${seconds} seconds`),
    Effect.orDie
  )

export interface Delivered {
  readonly bytes: Buffer
  /** Receipt at the far end, `performance.now()` ms. */
  readonly at: number
}

export interface RunResult {
  /** Output datagrams as received by the far end, in order. */
  readonly delivered: ReadonlyArray<Delivered>
  /** Send time of each input datagram (index = input order), `performance.now()` ms. */
  readonly sentAt: ReadonlyArray<number>
  readonly stats: AicPipelineStats
  readonly outPort: number
}

export interface RunOptions {
  readonly mode?: "annotate" | "replace"
  readonly extensionId?: number
  /** Wait between frames (the packets of a frame go back to back). */
  readonly frameGapMs?: number
  /** Called before frame `index` is sent (fault injection at a point of the stream). */
  readonly beforeFrame?: (index: number) => Effect.Effect<void>
}

/**
 * Runs `datagrams` through a pipeline on the live AiCore: UDP into a bound socket (the pipeline's
 * source), pipeline output over UDP to a second bound socket (the far end). Waits until every
 * datagram was taken in, ends the source, and returns once the output has ended and arrived.
 */
export const runThroughPipeline = (sessionId: string, datagrams: ReadonlyArray<Uint8Array>, options: RunOptions = {}) =>
  Effect.gen(function*() {
    const ai = yield* AiCore
    const metrics = yield* AicMetrics
    const input = yield* Effect.promise(bound)
    const far = yield* Effect.promise(bound)
    const sender = yield* Effect.promise(bound)
    const delivered: Array<Delivered> = []
    far.on("message", (bytes) => delivered.push({ bytes, at: performance.now() }))
    const client = yield* ai.openSession(sessionId)
    const pipeline = yield* makeAicPipeline(udpSource(input), {
      ai: client,
      metrics,
      mode: options.mode ?? "annotate",
      extensionId: options.extensionId ?? 14,
      codecs: testCodecs,
      queueCapacity: 4096
    })
    const run = yield* Effect.forkChild(runToSink(pipeline, udpSink(sender, "127.0.0.1", far.address().port)))
    const sentAt: Array<number> = []
    const frames = framesOf(datagrams)
    for (let i = 0; i < frames.length; i++) {
      if (options.beforeFrame !== undefined) yield* options.beforeFrame(i)
      for (const d of frames[i]!) {
        sentAt.push(performance.now())
        sender.send(d, input.address().port, "127.0.0.1")
      }
      yield* sleep(options.frameGapMs ?? 1)
    }
    yield* until(() => pipeline.stats().received + pipeline.stats().overflow >= datagrams.length, "every datagram taken in")
    input.close()
    yield* Fiber.join(run)
    const stats = pipeline.stats()
    yield* until(() => delivered.length >= stats.forwarded, "every forwarded datagram at the far end")
    const outPort = far.address().port
    far.close()
    sender.close()
    return { delivered, sentAt, stats, outPort } satisfies RunResult
  })
