import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Option, Result, Schedule } from "effect"
import { AiCore } from "../../src/layers/AiCore.ts"
import { Health } from "../../src/layers/Health.ts"
import type { AiCoreFrame } from "../../src/schemas/aicore.ts"
import { aicLayer } from "../support/aic.ts"
import { type ReferenceAiCore, startReferenceAiCore } from "../support/reference-ai-core.ts"

/** One H.264 key frame of one packet. */
const frame: AiCoreFrame = {
  key: true,
  codec: "H264",
  payload: [new Uint8Array([0x65, 0x88, 0x84, 0x00, 0x33, 0x33, 0x33, 0x33])],
  metadata: { ssrc: 1, payloadType: 96, rtpTimestamp: 3000, firstSequence: 1, lastSequence: 1, packetCount: 1, lostPackets: 0, complete: true },
  network: { bitrateKbps: 0, packetLossPercent: 0, jitterMs: 0, rttMs: 0 }
}

const cores: Array<ReferenceAiCore> = []
afterAll(() => cores.forEach((c) => c.stop()))
const referenceCore = Effect.promise(async () => {
  const core = await startReferenceAiCore()
  cores.push(core)
  return core
})

/** Sends one frame on a session of the live AiCore (retrying while its stream opens); returns the `aic_compression` section. */
const sendOneFrame = Effect.gen(function*() {
  const ai = yield* AiCore
  const client = yield* ai.openSession("goal")
  // `unavailable` until the stream is open; any other outcome is the answer.
  const result = yield* client.call(frame).pipe(
    Effect.retry({ schedule: Schedule.spaced("20 millis"), times: 100, while: (e) => e.reason === "unavailable" }),
    Effect.result
  )
  const sections = yield* (yield* Health).sections
  const section = sections["aic_compression"]
  const field = (name: string): unknown => typeof section === "object" && section !== null ? Reflect.get(section, name) : undefined
  return { ai, result, field }
})

describe("AI Core compression settings", () => {
  it.live("AI_CORE_TARGET_SAVINGS and AI_CORE_QUALITY_LEVEL go with every request and show in /status", () =>
    Effect.gen(function*() {
      const core = yield* referenceCore
      const { field, result } = yield* sendOneFrame.pipe(
        Effect.scoped,
        Effect.provide(aicLayer({ AI_CORE_GRPC_URL: core.url, AI_CORE_DEADLINE_MS: "2000", AI_CORE_TARGET_SAVINGS: "0.4", AI_CORE_QUALITY_LEVEL: "7" }))
      )
      assert.isTrue(Result.isSuccess(result))
      const received = core.received.at(-1)
      assert.closeTo(received?.targetSavings ?? 0, 0.4, 1e-6, "float32 on the wire")
      assert.strictEqual(received?.qualityLevel, 7)
      assert.deepStrictEqual(
        [field("ai_core"), field("enable_compression"), field("target_savings"), field("quality_level")],
        ["configured", true, 0.4, 7]
      )
    }))

  it.live("unset, the request carries neither (the AI Core's own choice)", () =>
    Effect.gen(function*() {
      const core = yield* referenceCore
      const { field, result } = yield* sendOneFrame.pipe(Effect.scoped, Effect.provide(aicLayer({ AI_CORE_GRPC_URL: core.url, AI_CORE_DEADLINE_MS: "2000" })))
      assert.isTrue(Result.isSuccess(result))
      const received = core.received.at(-1)
      assert.isDefined(received)
      assert.isFalse(received !== undefined && ("targetSavings" in received || "qualityLevel" in received))
      assert.deepStrictEqual([field("target_savings"), field("quality_level")], [null, null])
    }))

  it.live("AI_CORE_ENABLE_COMPRESSION=false: nothing reaches the AI Core; frames fall back `disabled`, as with no AI Core", () =>
    Effect.gen(function*() {
      const core = yield* referenceCore
      const { ai, field, result } = yield* sendOneFrame.pipe(
        Effect.scoped,
        Effect.provide(aicLayer({ AI_CORE_GRPC_URL: core.url, AI_CORE_ENABLE_COMPRESSION: "false" }))
      )
      assert.strictEqual(ai.kind, "disabled")
      assert.isTrue(Option.isNone(ai.target))
      assert.strictEqual(Result.isFailure(result) ? result.failure.reason : "answered", "disabled")
      assert.strictEqual(core.frames, 0)
      assert.strictEqual(field("enable_compression"), false)
      assert.include(String(field("ai_core")), "compression_disabled")
    }))
})
