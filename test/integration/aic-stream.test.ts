import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schedule } from "effect"
import type { MessageHandlers } from "../../src/layers/media/messages.ts"
import { AicMetrics } from "../../src/layers/aicore/metrics.ts"
import { AiCore } from "../../src/layers/AiCore.ts"
import { serializeRtp } from "../../src/media/rtp.ts"
import type { RtpSink, RtpSource } from "../../src/programs/aic/io.ts"
import { makeAicPipeline, runToSink } from "../../src/programs/aic/pipeline.ts"
import { aicLayer, parseOrDie, testCodecs } from "../support/aic.ts"
import { VIDEO_PAYLOAD_TYPES } from "../support/ffmpeg-video.ts"
import { type ReferenceAiCore, startReferenceAiCore } from "../support/reference-ai-core.ts"

const H264 = VIDEO_PAYLOAD_TYPES.H264
/** A payload type no codec of the pipeline has: forwarded as it came. */
const OTHER = 111

/** An IDR slice NAL unit (type 5): classifies as H.264 key-frame data. */
const idr = new Uint8Array([0x65, 0x88, 0x84, 0x00, 0x33])
const packet = (sequence: number, timestamp: number, marker: boolean, payloadType = H264) =>
  serializeRtp({ payloadType, sequence, timestamp, ssrc: 0x1234, marker, payload: idr })

/** A source the test pushes into. */
const manualSource = () => {
  let handlers: MessageHandlers | undefined
  const source: RtpSource = {
    subscribe: (h) => {
      handlers = h
      return () => undefined
    }
  }
  return { source, push: (bytes: Uint8Array) => handlers?.push(bytes), end: () => handlers?.end() }
}

/** A sink that records each packet's sequence number and arrival time. */
const recordingSink = () => {
  const out: Array<{ readonly sequence: number; readonly at: number }> = []
  const sink: RtpSink = { send: (packets) => packets.forEach((p) => out.push({ sequence: parseOrDie(p).sequence, at: performance.now() })) }
  return { sink, out }
}

const until = (check: () => boolean) =>
  Effect.suspend(() => check() ? Effect.void : Effect.fail("not yet")).pipe(
    Effect.retry(Schedule.spaced("2 millis")),
    Effect.timeout("5 seconds"),
    Effect.orDie
  )

const pipelineOn = (sessionId: string, source: RtpSource) =>
  Effect.gen(function*() {
    const client = yield* (yield* AiCore).openSession(sessionId)
    return yield* makeAicPipeline(source, { ai: client, metrics: yield* AicMetrics, mode: "annotate", extensionId: 14, codecs: testCodecs, queueCapacity: 64 })
  })

const cores: Array<ReferenceAiCore> = []
afterAll(() => cores.forEach((c) => c.stop()))

describe("the AIC stream", () => {
  it.live("a packet outside frames waits behind the frame its SSRC is collecting; a frame whose tail never comes leaves after the hold", () =>
    Effect.gen(function*() {
      const { source, push } = manualSource()
      const { sink, out } = recordingSink()
      const pipeline = yield* pipelineOn("lanes", source)
      yield* Effect.forkScoped(runToSink(pipeline, sink))
      push(packet(1, 1000, false))
      push(packet(2, 1000, false, OTHER))
      push(packet(3, 1000, true))
      yield* until(() => out.length === 3)
      assert.deepStrictEqual(out.map((p) => p.sequence), [1, 3, 2], "the frame (1, 3), then the packet that came while it was collected")

      const started = performance.now()
      push(packet(4, 4000, false))
      yield* until(() => out.length === 4)
      const held = out[3]!.at - started
      assert.strictEqual(out[3]!.sequence, 4)
      assert.isAtLeast(held, 95, "held for FRAME_HOLD_MS (100 ms)")
      assert.isBelow(held, 1000)
      assert.strictEqual(pipeline.stats().frames, 2)
      assert.strictEqual(pipeline.stats().unframed, 1)
    }).pipe(Effect.scoped, Effect.provide(aicLayer({}))))

  it.live("interrupting the output interrupts the AI Core calls in flight: it ends at once, not at the deadline, and their answers count as late", () =>
    Effect.gen(function*() {
      const core = yield* Effect.promise(() => startReferenceAiCore())
      cores.push(core)
      core.latencyMs = 400
      yield* Effect.gen(function*() {
        const ai = yield* AiCore
        const { source, push } = manualSource()
        const { sink, out } = recordingSink()
        const pipeline = yield* pipelineOn("interrupted", source)
        const running = yield* Effect.forkScoped(runToSink(pipeline, sink))
        for (let i = 0; i < 3; i++) push(packet(10 + i, 3000 * i, true))
        yield* until(() => core.frames === 3)
        const started = performance.now()
        yield* Fiber.interrupt(running)
        assert.isBelow(performance.now() - started, 200, "interruption does not wait for the AI Core (deadline 5000 ms, answers after 400 ms)")
        assert.strictEqual(out.length, 0)
        const lateBefore = ai.stats().lateResults
        yield* until(() => ai.stats().lateResults >= lateBefore + 3)
      }).pipe(Effect.scoped, Effect.provide(aicLayer({ AI_CORE_GRPC_URL: core.url, AI_CORE_DEADLINE_MS: "5000" })))
    }))
})
