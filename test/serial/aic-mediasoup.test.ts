import { afterAll, assert, layer } from "@effect/vitest"
import { Effect, Option, Result } from "effect"
import type { types } from "mediasoup"
import { createSocket } from "node:dgram"
import { AicMetrics } from "../../src/layers/aicore/metrics.ts"
import { MediaServer } from "../../src/layers/MediaServer.ts"
import { disabledSession } from "../../src/layers/AiCore.ts"
import type { RtpSink, RtpSource } from "../../src/programs/aic/io.ts"
import { producerSink } from "../../src/programs/aic/io.ts"
import { makeAicPipeline, runToSink } from "../../src/programs/aic/pipeline.ts"
import { getExtension, type RtpPacket, setExtension } from "../../src/media/rtp.ts"
import { AIC_EXTENSION_URI, decodeAicMetadata } from "../../src/media/aic-element.ts"
import { framesOf, parseOrDie, testCodecs } from "../support/aic.ts"
import { record, request, signIn, str } from "../support/auth.ts"
import { captureVideoRtp, VIDEO_FPS, VIDEO_PAYLOAD_TYPES, VIDEO_SECONDS } from "../support/ffmpeg-video.ts"
import { eventually, mediaServer, user } from "../support/media.ts"
import { checkMetricsWithPromtool } from "../support/promtool.ts"
import { startReferenceAiCore } from "../support/reference-ai-core.ts"

const AIC_ID = 14
/** A header extension mediasoup knows (the control: it must survive where the AIC element does not). */
const VIDEO_ORIENTATION_URI = "urn:3gpp:video-orientation"
const VIDEO_ORIENTATION_ID = 4
const FRAMES = VIDEO_FPS * VIDEO_SECONDS

const vp8 = await captureVideoRtp("VP8")
const ssrc = parseOrDie(vp8[0]!).ssrc
const core = await startReferenceAiCore({ record: false })
// The far end of live sessions' processed video (AIC_FORWARD_TARGET).
const forwarded: Array<Buffer> = []
const far = createSocket({ type: "udp4", recvBufferSize: 8 * 1024 * 1024 })
far.on("message", (packet) => forwarded.push(packet))
await new Promise<void>((resolve) => far.bind(0, "127.0.0.1", resolve))
afterAll(() => {
  core.stop()
  far.close()
})

const vp8Parameters = (headerExtensions: Array<types.RtpHeaderExtensionParameters> = []): types.RtpParameters => ({
  codecs: [{ mimeType: "video/VP8", payloadType: VIDEO_PAYLOAD_TYPES.VP8, clockRate: 90_000 }],
  encodings: [{ ssrc }],
  headerExtensions
})

/** Pushes `packets` in one go, then ends. */
const arraySource = (packets: ReadonlyArray<Uint8Array>): RtpSource => ({
  subscribe: (handlers) => {
    for (const p of packets) handlers.push(p)
    handlers.end()
    return () => undefined
  }
})

const sleep = (ms: number) => Effect.promise(() => new Promise((r) => setTimeout(r, ms)))
const elementIds = (packet: RtpPacket): Array<number> =>
  packet.extension === undefined || packet.extension._tag === "Raw" ? [] : packet.extension.elements.map((e) => e.id)

const Server = mediaServer({
  MEDIASOUP_WORKERS: "1",
  RTC_MIN_PORT: "43000",
  RTC_MAX_PORT: "43049",
  AI_CORE_GRPC_URL: core.url,
  AIC_FORWARD_TARGET: `127.0.0.1:${far.address().port}`
})

layer(Server, { timeout: 90_000 })("AIC and mediasoup (real workers)", (it) => {
  it.effect("a router strips the AIC element: in the packets of a DirectTransport producer, no consumer gets it; a known extension survives", () =>
    Effect.gen(function*() {
      const media = yield* MediaServer
      const alice = yield* signIn(user("alice"))
      const created = yield* request("POST", "/api/session", { aic: false }, alice.headers)
      const id = str(created.json["id"])
      yield* media.rtpCapabilities(id)
      const router = Option.getOrThrow(yield* media.router(id))
      assert.isFalse(router.rtpCapabilities.headerExtensions?.some((e) => String(e.uri) === AIC_EXTENSION_URI), "the router does not offer the AIC URI")

      const inbound = yield* Effect.promise(() => router.createDirectTransport())
      // mediasoup refuses a URI it does not know (the signaling edge answers 400, see signaling.test.ts), so
      // the element rides in the packets undeclared.
      const producer = yield* Effect.promise(() =>
        inbound.produce({ kind: "video", rtpParameters: vp8Parameters([{ uri: VIDEO_ORIENTATION_URI, id: VIDEO_ORIENTATION_ID }]) })
      )
      const direct = yield* Effect.promise(() =>
        router.createDirectTransport().then((t) => t.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities }))
      )
      const viaDirect: Array<Buffer> = []
      direct.on("rtp", (p: Buffer) => viaDirect.push(p))
      const socket = createSocket("udp4")
      const viaPlain: Array<Buffer> = []
      socket.on("message", (p) => viaPlain.push(p))
      yield* Effect.promise(() => new Promise<void>((r) => socket.bind(0, "127.0.0.1", r)))
      const plain = yield* Effect.promise(() =>
        router.createPlainTransport({ listenInfo: { protocol: "udp", ip: "127.0.0.1", portRange: { min: 43050, max: 43059 } }, rtcpMux: true, comedia: false })
      )
      yield* Effect.promise(() => plain.connect({ ip: "127.0.0.1", port: socket.address().port }))
      const plainConsumer = yield* Effect.promise(() => plain.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities }))
      for (const consumer of [direct, plainConsumer]) {
        assert.isFalse(consumer.rtpParameters.headerExtensions?.some((e) => String(e.uri) === AIC_EXTENSION_URI), "no consumer negotiates it")
      }

      // ffmpeg's VP8 with a video-orientation element, through the pipeline (AIC element added), into the producer.
      const input = vp8.map((d) => Result.getOrThrow(setExtension(d, VIDEO_ORIENTATION_ID, Uint8Array.of(0x01))))
      const written: Array<Uint8Array> = []
      const tee = (sink: RtpSink): RtpSink => ({
        send: (packets) => {
          written.push(...packets)
          sink.send(packets)
        }
      })
      // No AI Core here (the element is what matters), so the live test's breaker starts fresh.
      const pipeline = yield* makeAicPipeline(arraySource(input), {
        ai: disabledSession(id),
        metrics: yield* AicMetrics,
        mode: "annotate",
        extensionId: AIC_ID,
        codecs: testCodecs,
        queueCapacity: 4096
      })
      yield* runToSink(pipeline, tee(producerSink(producer)))
      assert.strictEqual(written.length, vp8.length)
      assert.isTrue(written.every((d) => getExtension(parseOrDie(d), AIC_ID)?.byteLength === 16), "the pipeline wrote the element")
      // RTCP shares the plain transport's port (rtcp-mux): RTP is what is not RTCP (RFC 5761), of the consumer's SSRC.
      const consumerSsrc = plainConsumer.rtpParameters.encodings?.[0]?.ssrc
      const plainRtp = () => viaPlain.filter((p) => p[1]! < 192 || p[1]! > 223).map(parseOrDie).filter((p) => p.ssrc === consumerSsrc)
      yield* eventually(Effect.sync(() => viaDirect.length >= vp8.length && plainRtp().length >= vp8.length), "every packet at both consumers")
      for (const [name, packets] of [["DirectTransport", viaDirect.map(parseOrDie)], ["PlainTransport", plainRtp()]] as const) {
        assert.isAbove(packets.length, 0, name)
        const orientation = name === "DirectTransport"
          ? direct.rtpParameters.headerExtensions?.find((e) => e.uri === VIDEO_ORIENTATION_URI)?.id
          : plainConsumer.rtpParameters.headerExtensions?.find((e) => e.uri === VIDEO_ORIENTATION_URI)?.id
        for (const p of packets) {
          const dataOf = (eid: number) => getExtension(p, eid)
          assert.isFalse(elementIds(p).some((eid) => dataOf(eid)?.byteLength === 16), `${name}: a 16-byte element survived (ids ${elementIds(p).join(",")})`)
          assert.deepStrictEqual(dataOf(orientation ?? -1), Uint8Array.of(0x01), `${name}: video-orientation survives (remapped to ${orientation})`)
        }
        console.log(
          `aic-mediasoup ${name}: ${packets.length} packets, element ids ${elementIds(packets[0]!).join(",")}; AIC element absent, video-orientation present`
        )
      }
      socket.close()
      plain.close()
    }))

  it.effect("live: a video producer of an `aic` session is consumed, processed and forwarded over UDP with the AIC element; /status and /metrics report it", () =>
    Effect.gen(function*() {
      const bob = yield* signIn(user("bob"))
      const sessionOf = (aic: boolean) =>
        Effect.gen(function*() {
          const created = yield* request("POST", "/api/session", { aic }, bob.headers)
          assert.strictEqual(created.status, 201, created.text)
          const id = str(created.json["id"])
          const plain = yield* request("POST", `/api/webrtc/${id}/plain-transports`, { comedia: true }, bob.headers)
          assert.strictEqual(plain.status, 201, plain.text)
          const produced = yield* request("POST", `/api/webrtc/${id}/plain-transports/${str(plain.json["id"])}/produce`, {
            kind: "video",
            rtpParameters: vp8Parameters()
          }, bob.headers)
          assert.strictEqual(produced.status, 201, produced.text)
          return { id, port: Number(plain.json["port"]), transportId: str(plain.json["id"]) }
        })
      // Frame by frame, 3 ms apart (the packets of a frame back to back).
      const send = (port: number) =>
        Effect.gen(function*() {
          const sender = createSocket("udp4")
          for (const frame of framesOf(vp8)) {
            for (const packet of frame) sender.send(packet, port, "127.0.0.1")
            yield* sleep(3)
          }
          yield* sleep(50)
          sender.close()
        })
      const status = Effect.map(request("GET", "/status"), (res) => record(res.json["aic_compression"]))

      const before = yield* status
      const count = (section: Record<string, unknown>, key: string) => Number(section[key]) - Number(before[key])
      // aic: false -> nothing is forwarded.
      const off = yield* sessionOf(false)
      yield* send(off.port)
      yield* sleep(300)
      assert.strictEqual(forwarded.length, 0)
      assert.strictEqual((yield* status)["pipelines"], 0)

      const on = yield* sessionOf(true)
      yield* eventually(Effect.map(status, (s) => s["pipelines"] === 1), "the session's pipeline")
      yield* send(on.port)
      yield* eventually(Effect.sync(() => forwarded.length >= vp8.length), "every packet forwarded", 15_000)
      const out = forwarded.map(parseOrDie)
      assert.strictEqual(out.length, vp8.length)
      out.forEach((p, i) => {
        if (i > 0) assert.strictEqual(p.sequence, (out[i - 1]!.sequence + 1) & 0xffff, "in order, none missing")
        const meta = decodeAicMetadata(getExtension(p, AIC_ID) ?? new Uint8Array())
        assert.isTrue(Result.isSuccess(meta), `seq ${p.sequence}: AIC element`)
        assert.deepStrictEqual(p.payload, parseOrDie(vp8[i]!).payload)
      })

      const section = yield* status
      assert.strictEqual(count(section, "frames_processed"), FRAMES)
      assert.strictEqual(section["ai_core"], "configured")
      assert.strictEqual(count(section, "packets_forwarded"), vp8.length)
      const grpc = record(section["grpc_stats"])
      assert.strictEqual(grpc["circuit_breaker_open"], false)
      assert.isAtLeast(Number(grpc["successful_requests"]), FRAMES - 3, JSON.stringify(section))
      const metrics = (yield* request("GET", "/metrics")).text
      const promtool = checkMetricsWithPromtool(metrics)
      assert.strictEqual(promtool.status, 0, promtool.output)
      for (
        const line of [
          `auralink_aic_frames_processed_total ${2 * FRAMES}`,
          `auralink_aic_packets_forwarded_total ${2 * vp8.length}`,
          "auralink_circuit_breaker_state{name=\"ai_core\"} 0"
        ]
      ) {
        assert.include(metrics, line)
      }
      for (
        const name of [
          "auralink_aic_frames_compressed_total",
          "auralink_aic_compression_ratio_bucket",
          "auralink_aic_bandwidth_saved_bytes",
          "auralink_aic_latency_seconds_bucket",
          "auralink_aic_fallbacks_total"
        ]
      ) {
        assert.include(metrics, name)
      }
      const readiness = record((yield* request("GET", "/ready")).json["dependencies"])
      assert.deepInclude(record(readiness["ai_core"]), { status: "up", critical: false })

      // The source ends (its transport, and with it the producer and our consumer, closes): the pipeline finishes and is gone.
      const closed = yield* request("DELETE", `/api/webrtc/${on.id}/transports/${on.transportId}`, undefined, bob.headers)
      assert.strictEqual(closed.status, 204, closed.text)
      yield* eventually(Effect.map(status, (s) => s["pipelines"] === 0), "the pipeline to end with its source")
    }))
})
