import * as grpc from "@grpc/grpc-js"
import { Effect, Layer, Result, Schedule, type Scope } from "effect"
import { spawn } from "node:child_process"
import type { Socket } from "node:dgram"
import { once } from "node:events"
import { performance } from "node:perf_hooks"
import { Worker } from "node:worker_threads"
import { AicMetrics } from "../src/layers/aicore/metrics.ts"
import { type AiCoreTransport, loadCompressMethod } from "../src/layers/aicore/transport.ts"
import { AiCore } from "../src/layers/AiCore.ts"
import { AppConfig } from "../src/layers/Config.ts"
import { Health } from "../src/layers/Health.ts"
import { Metrics } from "../src/layers/Metrics.ts"
import { type RtpSink, type RtpSource, udpSink, udpSource } from "../src/programs/aic/io.ts"
import { guardedCall } from "../src/programs/aic/compress.ts"
import { makeAicPipeline, runToSink } from "../src/programs/aic/pipeline.ts"
import { parseRtp } from "../src/media/rtp.ts"
import type { AiCoreFrame } from "../src/schemas/aicore.ts"
import { bound, framesOf, testCodecs } from "../test/support/aic.ts"
import { captureVideoRtp } from "../test/support/ffmpeg-video.ts"
import { type BenchResult, freePort, percentile } from "./support.ts"

// (a) In memory, one core: STREAMS ffmpeg H.264 streams (distinct SSRCs, one pipeline each, as
//     the service runs one per DirectTransport consumer) pushed in bursts of BURST packets with a
//     turn of the event loop between bursts, through the whole pipeline with an in-process no-op
//     AI Core (answers on the next microtask through the real client: breaker, deadline, Schema
//     decode); added latency per packet = sink time - push time. Baseline: a bare loop that parses
//     each packet and copies it.
// (b) With I/O: a worker thread blasts the same packets over UDP; this process receives, runs one
//     pipeline (no-op AI Core) and sends each packet on to the worker's sink socket; forwarded
//     packets/s at the sink. Baseline: bare dgram receive -> parse -> copy -> send.
// (c) The reference AI Core (its own process, gRPC on loopback): the UDP run again through it, and
//     one frame at a time, the client's submit (deadline timer + breaker + Schema decode) next to a
//     bare grpc-js write -> data on the same kind of stream; p50 of each, interleaved rounds.

/** Streams (pipelines) of the second in-memory run; the first is one pipeline. */
const STREAMS = 50
const PACKETS = Number(process.env["BENCH_RTP_PACKETS"] ?? 300_000)
const BURST = 64
const IO_SECONDS = Number(process.env["BENCH_SECONDS"] ?? 3)
/** Offered load of (c)'s UDP run (packets/s): the reference AI Core, this process and the UDP peer share 2 cores; at 3000 it stalls past the 10 ms deadline now and then and the breaker opens. */
const GRPC_IO_RATE = 1_000
/** Rounds of the one-pipeline and bare in-memory runs (medians reported). */
const ROUNDS = 3
const CALL_ROUNDS = 4
const CALLS_PER_ROUND = 500

const config = (env: Record<string, string>) => AppConfig.layerFrom({ LOG_LEVEL: "warn", AI_CORE_MAX_IN_FLIGHT: "4096", AIC_QUEUE_CAPACITY: "16384", ...env })

/** The AI Core client over `transport`, with what it needs. */
const aiLayer = (transport: AiCoreTransport, env: Record<string, string> = {}) =>
  AiCore.layerTransport(transport).pipe(
    Layer.provideMerge(AicMetrics.layer),
    Layer.provideMerge(Layer.mergeAll(Health.layer, Metrics.layer)),
    Layer.provideMerge(config(env))
  )

/** An in-process AI Core that answers every frame, unchanged, on the next microtask. */
const noopTransport: AiCoreTransport = {
  target: "in-process no-op",
  open: (handlers) => ({
    write: (m) =>
      queueMicrotask(() => {
        let size = 0
        for (const p of m.payload) size += p.byteLength
        handlers.onResult({
          frameNumber: m.frameNumber,
          success: true,
          payload: m.payload,
          originalSizeBytes: size,
          compressedSizeBytes: size,
          compressionRatio: 1,
          qualityScore: 1,
          modelType: "noop",
          modelHash: "",
          processingTimeMs: 0,
          error: ""
        })
      }),
    close: () => undefined
  }),
  connectivity: () => "READY",
  reachable: () => true,
  close: () => undefined
}

/**
 * One synthetic stream: the capture, with its own SSRC, re-sent in a loop from a pool of POOL_LOOPS
 * copies; sequence numbers and timestamps are rewritten as each frame is taken, so the stream runs
 * on without gaps while only the pool stays in memory (the pipeline is done with a packet long
 * before the pool comes round to it again).
 */
class Feed {
  readonly ssrc: number
  private readonly pool: Array<Buffer> = []
  /** The pool as plain Uint8Array views (what the pipeline makes of Buffers on entry; also what the baseline gets). */
  private readonly views: Array<Uint8Array>
  private readonly timestamps: Uint32Array
  private readonly frames: Array<readonly [number, number]> = []
  private readonly span: number
  private frame = 0
  private cycle = 0
  sent = 0

  constructor(capture: ReadonlyArray<Buffer>, ssrc: number) {
    this.ssrc = ssrc
    const first = capture[0]!.readUInt32BE(4)
    const captureSpan = (capture[capture.length - 1]!.readUInt32BE(4) - first + 3000) >>> 0
    for (let loop = 0; loop < POOL_LOOPS; loop++) {
      for (const p of capture) {
        const copy = Buffer.from(p)
        copy.writeUInt32BE((p.readUInt32BE(4) + loop * captureSpan) >>> 0, 4)
        copy.writeUInt32BE(ssrc, 8)
        this.pool.push(copy)
      }
    }
    this.views = this.pool.map((p) => new Uint8Array(p.buffer, p.byteOffset, p.byteLength))
    this.timestamps = Uint32Array.from(this.pool, (p) => p.readUInt32BE(4))
    this.span = (captureSpan * POOL_LOOPS) >>> 0
    for (const group of framesOf(this.pool.map((_, i) => i), (i) => this.pool[i]!)) this.frames.push([group[0]!, group[group.length - 1]! + 1])
  }

  /** The next frame's packets, renumbered. */
  next(): Array<Uint8Array> {
    const [from, to] = this.frames[this.frame]!
    for (let i = from; i < to; i++) {
      this.pool[i]!.writeUInt16BE(this.sent++ & 0xffff, 2)
      this.pool[i]!.writeUInt32BE((this.timestamps[i]! + this.cycle * this.span) >>> 0, 4)
    }
    const out = this.views.slice(from, to)
    if (++this.frame === this.frames.length) {
      this.frame = 0
      this.cycle++
    }
    return out
  }
}

const POOL_LOOPS = 40
const feeds = (capture: ReadonlyArray<Buffer>, streams: number) => Array.from({ length: streams }, (_, s) => new Feed(capture, 0x10000 + s))

// ---- (a) in memory ----------------------------------------------------------------------------

/** Bare loop: the same frames from the same feeds, each packet parsed and copied. */
const baselineInMemory = (capture: ReadonlyArray<Buffer>, streams: number, total: number): number => {
  const sources = feeds(capture, streams)
  const started = performance.now()
  let done = 0
  let bytes = 0
  while (done < total) {
    for (const feed of sources) {
      for (const p of feed.next()) {
        const parsed = parseRtp(p)
        if (Result.isSuccess(parsed)) bytes += Uint8Array.prototype.slice.call(parsed.success.bytes).byteLength
        done++
      }
    }
  }
  if (bytes === 0) throw new Error("nothing parsed")
  return done / ((performance.now() - started) / 1000)
}

/**
 * One pipeline per stream; the streams take turns frame by frame (a sender's frame leaves in one
 * burst), BURST packets (whole frames) per turn of the event loop.
 */
const pipelineInMemory = (capture: ReadonlyArray<Buffer>, streams: number, total: number) =>
  Effect.gen(function*() {
    const ai = yield* AiCore
    const metrics = yield* AicMetrics
    const sources = feeds(capture, streams)
    const perStream = Math.ceil(total / streams) + 4 * capture.length
    const pushedAt = sources.map(() => new Float64Array(perStream))
    const latencies = new Float64Array(streams * perStream)
    let out = 0
    const pushes: Array<(p: Uint8Array) => void> = []
    yield* Effect.forEach(sources, (_, s) =>
      Effect.gen(function*() {
        let k = 0
        const source: RtpSource = {
          subscribe: (handlers) => {
            pushes[s] = handlers.push
            return () => undefined
          }
        }
        const sink: RtpSink = {
          send: (packets) => {
            const now = performance.now()
            for (let i = 0; i < packets.length; i++) latencies[out++] = now - pushedAt[s]![k++]!
          }
        }
        const client = yield* ai.openSession(`bench-${s}`)
        const pipeline = yield* makeAicPipeline(source, { ai: client, metrics, mode: "annotate", extensionId: 14, codecs: testCodecs, queueCapacity: 16_384 })
        yield* Effect.forkScoped(runToSink(pipeline, sink))
      }))
    let pushed = 0
    const started = performance.now()
    yield* Effect.promise(async () => {
      let s = 0
      while (pushed < total) {
        const now = performance.now()
        for (let inBurst = 0; inBurst < BURST;) {
          const feed = sources[s]!
          const base = feed.sent
          const frame = feed.next()
          for (let i = 0; i < frame.length; i++) {
            pushedAt[s]![base + i] = now
            pushes[s]!(frame[i]!)
          }
          inBurst += frame.length
          s = s + 1 === streams ? 0 : s + 1
        }
        pushed = sources.reduce((n, f) => n + f.sent, 0)
        await new Promise((r) => setImmediate(r))
      }
      while (out < pushed) await new Promise((r) => setImmediate(r))
    })
    const seconds = (performance.now() - started) / 1000
    const sorted = Array.from(latencies.subarray(0, out)).sort((a, b) => a - b)
    return { pps: pushed / seconds, p50: percentile(sorted, 50) * 1000, p99: percentile(sorted, 99) * 1000 }
  })

// ---- (b), (c) UDP -----------------------------------------------------------------------------

/** Runs the peer worker against `receiver` for IO_SECONDS; forwarded packets/s at its sink. */
const udpRun = async (
  packets: ReadonlyArray<Buffer>,
  receiver: Socket,
  forward: (sinkPort: number) => void,
  rate?: number
): Promise<{ sent: number; received: number }> => {
  const worker = new Worker(new URL("./rtp-udp-peer.ts", import.meta.url), {
    workerData: {
      packets: packets.map((p) => new Uint8Array(p)),
      target: receiver.address().port,
      seconds: IO_SECONDS,
      ...(rate === undefined ? {} : { rate })
    }
  })
  const messages: Array<unknown> = []
  const next = () => new Promise<unknown>((resolve) => messages.length > 0 ? resolve(messages.shift()) : worker.once("message", resolve))
  const first = await next()
  const sinkPort = typeof first === "object" && first !== null && "sinkPort" in first && typeof first.sinkPort === "number" ? first.sinkPort : -1
  forward(sinkPort)
  worker.postMessage("start")
  const result = await next()
  await worker.terminate()
  if (
    typeof result === "object" && result !== null && "sent" in result && "received" in result && typeof result.sent === "number" &&
    typeof result.received === "number"
  ) {
    return { sent: result.sent, received: result.received }
  }
  throw new Error("rtp-udp-peer: no result")
}

const baselineUdp = async (packets: ReadonlyArray<Buffer>): Promise<number> => {
  const receiver = await bound()
  const result = await udpRun(packets, receiver, (sinkPort) =>
    receiver.on("message", (message: Buffer) => {
      const parsed = parseRtp(message)
      if (Result.isSuccess(parsed)) receiver.send(Uint8Array.prototype.slice.call(parsed.success.bytes), sinkPort, "127.0.0.1")
    }))
  receiver.close()
  return result.received / IO_SECONDS
}

const pipelineUdp = (
  packets: ReadonlyArray<Buffer>,
  rate?: number
): Effect.Effect<{ pps: number; sentPps: number; answered: number; fallbacks: object }, never, AiCore | AicMetrics | Scope.Scope> =>
  Effect.gen(function*() {
    const ai = yield* AiCore
    const metrics = yield* AicMetrics
    const receiver = yield* Effect.promise(bound)
    const client = yield* ai.openSession("bench-udp")
    const pipeline = yield* makeAicPipeline(udpSource(receiver), {
      ai: client,
      metrics,
      mode: "annotate",
      extensionId: 14,
      codecs: testCodecs,
      queueCapacity: 16_384
    })
    // The worker's sink port is known once it runs: the sink is made then.
    let sink: RtpSink = { send: () => undefined }
    yield* Effect.forkScoped(runToSink(pipeline, { send: (out) => sink.send(out) }))
    const result = yield* Effect.promise(() =>
      udpRun(packets, receiver, (sinkPort) => {
        sink = udpSink(receiver, "127.0.0.1", sinkPort)
      }, rate)
    )
    receiver.close()
    const stats = pipeline.stats()
    return { pps: result.received / IO_SECONDS, sentPps: result.sent / IO_SECONDS, answered: stats.answered, fallbacks: stats.fallbacks }
  })

// ---- (c) per-call cost over gRPC --------------------------------------------------------------

const startReference = async (): Promise<{ url: string; stop: () => void }> => {
  const port = await freePort()
  const child = spawn(process.execPath, ["test/support/reference-ai-core-main.ts", "--port", String(port)], { stdio: ["ignore", "pipe", "inherit"] })
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => chunk.toString().includes("reference AI Core") && resolve())
    child.once("exit", () => reject(new Error("reference AI Core exited")))
  })
  return { url: `127.0.0.1:${port}`, stop: () => child.kill("SIGTERM") }
}

/** A frame request as the pipeline sends it (a typical H.264 delta frame payload). */
const sampleFrame = (payload: Uint8Array): AiCoreFrame => ({
  key: false,
  codec: "H264",
  payload: [payload],
  metadata: { ssrc: 1, payloadType: 96, rtpTimestamp: 1, firstSequence: 1, lastSequence: 1, packetCount: 1, lostPackets: 0, complete: true },
  network: { bitrateKbps: 0, packetLossPercent: 0, jitterMs: 0, rttMs: 0 }
})

const wrapperCalls = (frame: AiCoreFrame, n: number) =>
  Effect.gen(function*() {
    const call = guardedCall(yield* (yield* AiCore).openSession("bench-calls"))
    const times: Array<number> = []
    for (let i = 0; i < n; i++) {
      const started = performance.now()
      yield* call(frame).pipe(Effect.catch((reason) => Effect.die(new Error(`wrapper call: ${reason}`))))
      times.push(performance.now() - started)
    }
    return times
  }).pipe(Effect.scoped)

/** Sends `frame` every 20 ms until one is answered (the channel is then connected). */
const untilAnswered = (frame: AiCoreFrame) =>
  Effect.gen(function*() {
    const client = yield* (yield* AiCore).openSession("bench-connect")
    yield* client.call(frame).pipe(Effect.retry({ schedule: Schedule.spaced("20 millis"), times: 50 }), Effect.orDie)
  }).pipe(Effect.scoped)

const bareCalls = async (url: string, frame: AiCoreFrame, n: number): Promise<Array<number>> => {
  const method = loadCompressMethod()
  const client = new grpc.Client(url, grpc.credentials.createInsecure())
  const call = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize)
  call.on("error", () => undefined) // the CANCELLED at the end
  const times: Array<number> = []
  for (let i = 0; i < n; i++) {
    const started = performance.now()
    const answered = once(call, "data")
    call.write({
      sessionId: "bare",
      frameNumber: i,
      frameType: "FRAME_TYPE_DELTA",
      codec: "CODEC_H264",
      payload: frame.payload,
      metadata: frame.metadata,
      network: frame.network
    })
    await answered
    times.push(performance.now() - started)
  }
  call.end()
  call.cancel()
  client.close()
  return times
}

// ---- run --------------------------------------------------------------------------------------

const fmt = (n: number, digits = 0) => n.toFixed(digits)
const median = (xs: ReadonlyArray<number>) => percentile(xs, 50)

export const run = async (): Promise<BenchResult> => {
  const capture = await captureVideoRtp("H264")
  const udpFeed = new Feed(capture, 0x20000)
  const udpPackets: Array<Buffer> = []
  while (udpPackets.length < 20_000) udpPackets.push(...udpFeed.next().map((p) => Buffer.from(p)))

  // (a): one pipeline (the headline), then STREAMS pipelines side by side; the bare loop last
  // (run first, its garbage and type feedback slow the pipeline runs after it).
  // Rounds, and their medians: run-to-run spread on this (virtual, shared) machine is large.
  const inMemory = await Effect.runPromise(
    Effect.scoped(Effect.gen(function*() {
      yield* pipelineInMemory(capture, 1, 20_000) // warm-up
      const ones: Array<{ pps: number; p50: number; p99: number }> = []
      for (let round = 0; round < ROUNDS; round++) ones.push(yield* pipelineInMemory(capture, 1, PACKETS))
      const many = yield* pipelineInMemory(capture, STREAMS, PACKETS)
      return { ones, many }
    })).pipe(Effect.provide(aiLayer(noopTransport)))
  )
  baselineInMemory(capture, 1, 20_000) // warm-up
  const baselinePps = median(Array.from({ length: ROUNDS }, () => baselineInMemory(capture, 1, PACKETS)))
  const { ones, many } = inMemory
  const one = { pps: median(ones.map((r) => r.pps)), p50: median(ones.map((r) => r.p50)), p99: median(ones.map((r) => r.p99)) }
  console.log(`(a) rounds of one pipeline: ${ones.map((r) => `${fmt(r.pps)} pps p50 ${fmt(r.p50)} us p99 ${fmt(r.p99)} us`).join("; ")}`)
  console.log(
    `(a) in memory, ${PACKETS} packets (ffmpeg H.264, bursts of ${BURST}), no-op AI Core: one pipeline ${fmt(one.pps)} pps, added p50 ${fmt(one.p50)} us p99 ${
      fmt(one.p99)
    } us (medians); ` +
      `${STREAMS} pipelines ${fmt(many.pps)} pps, p50 ${fmt(many.p50)} us p99 ${fmt(many.p99)} us; bare parse+copy loop ${fmt(baselinePps)} pps`
  )

  // (b)
  const ioBaseline = await baselineUdp(udpPackets)
  const io = await Effect.runPromise(Effect.scoped(pipelineUdp(udpPackets)).pipe(Effect.provide(aiLayer(noopTransport))))
  console.log(`(b) UDP in -> pipeline (no-op AI Core) -> UDP out: ${fmt(io.pps)} pps; bare dgram receive->parse->copy->send ${fmt(ioBaseline)} pps`)

  // (c)
  const reference = await startReference()
  try {
    const grpcLayer = (env: Record<string, string>) =>
      AiCore.layerGrpc(reference.url).pipe(
        Layer.provideMerge(AicMetrics.layer),
        Layer.provideMerge(Layer.mergeAll(Health.layer, Metrics.layer)),
        Layer.provideMerge(config(env))
      )
    // The service's defaults (10 ms deadline, 32 frames in flight), GRPC_IO_RATE packets/s offered:
    // what the AI Core cannot take in time passes through.
    const payload = parseRtp(capture[5]!)
    const frame = sampleFrame(Result.isSuccess(payload) ? payload.success.payload : new Uint8Array(400))
    // Calls until one is answered first, so the run starts on a connected channel (as a long-running service does).
    const grpcIo = await Effect.runPromise(
      Effect.scoped(Effect.andThen(untilAnswered(frame), pipelineUdp(udpPackets, GRPC_IO_RATE))).pipe(
        Effect.provide(grpcLayer({ AI_CORE_MAX_IN_FLIGHT: "32" }))
      )
    )
    const wrapper: Array<number> = []
    const bare: Array<number> = []
    for (let round = 0; round < CALL_ROUNDS; round++) {
      bare.push(...(await bareCalls(reference.url, frame, CALLS_PER_ROUND)).slice(50))
      wrapper.push(
        ...(await Effect.runPromise(wrapperCalls(frame, CALLS_PER_ROUND).pipe(Effect.provide(grpcLayer({ AI_CORE_DEADLINE_MS: "1000" }))))).slice(50)
      )
    }
    const wrapperP50 = percentile(wrapper, 50) * 1000
    const bareP50 = percentile(bare, 50) * 1000
    console.log(
      `(c) reference AI Core over gRPC (own process): UDP at ${fmt(grpcIo.sentPps)} pps offered, ${
        fmt(grpcIo.pps)
      } pps out (frames answered ${grpcIo.answered}, passed through ${JSON.stringify(grpcIo.fallbacks)}); ` +
        `one frame at a time, p50 ${fmt(wrapperP50)} us through the client (Effect.timeout + breaker.protect) vs ${fmt(bareP50)} us bare grpc-js`
    )
    return {
      summary: `rtp-pipeline pps=${fmt(one.pps)} baseline_pps=${fmt(baselinePps)} ratio=${fmt(one.pps / baselinePps, 3)} ` +
        `p50_us=${fmt(one.p50)} p99_us=${fmt(one.p99)} io_pps=${fmt(io.pps)} io_baseline_pps=${fmt(ioBaseline)} ` +
        `io_ratio=${fmt(io.pps / ioBaseline, 3)} grpc_wrapper_ratio=${fmt(wrapperP50 / bareP50, 3)}`
    }
  } finally {
    reference.stop()
  }
}
