import { assert, layer } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import { spawn } from "node:child_process"
import { MediaServer } from "../../src/layers/MediaServer.ts"
import { activateSession } from "../../src/programs/sessions/activate.ts"
import { list, record, request, signIn, str } from "../support/auth.ts"
import { eventually, mediaServer, opusRtpParameters, startSession, user } from "../support/media.ts"
import { DataProducerId, ProducerId, TransportId } from "../../src/schemas/ids.ts"

const STUN = "stun:stun.example.org:3478"
const Server = mediaServer({ MEDIASOUP_WORKERS: "1", RTC_MIN_PORT: "41200", RTC_MAX_PORT: "41299", STUN_URLS: STUN })

/**
 * Two seconds of a 440 Hz tone as Opus RTP (payload type 100, SSRC 1111), sent in real time.
 * ffmpeg sends RTCP from a second socket, so the transport is made without RTCP mux (as
 * mediasoup-demo's ffmpeg broadcaster does): with mux, comedia may latch onto the RTCP socket first.
 */
const sendOpus = (port: number, rtcpPort: number) =>
  Effect.callback<number>((resume) => {
    const ffmpeg = spawn("ffmpeg", [
      "-hide_banner",
      "-loglevel",
      "error",
      "-re",
      "-f",
      "lavfi",
      "-i",
      "sine=frequency=440:duration=2",
      "-c:a",
      "libopus",
      "-ar",
      "48000",
      "-ac",
      "2",
      "-payload_type",
      "100",
      "-ssrc",
      "1111",
      "-f",
      "rtp",
      `rtp://127.0.0.1:${port}?rtcpport=${rtcpPort}`
    ], { stdio: ["ignore", "ignore", "inherit"] })
    ffmpeg.on("exit", (code) => resume(Effect.succeed(code ?? -1)))
    ffmpeg.on("error", (error) => resume(Effect.die(error)))
  })

const fingerprint = Array.from({ length: 32 }, (_, i) => i.toString(16).padStart(2, "0").toUpperCase()).join(":")

layer(Server, { timeout: 60_000 })("WebRTC signaling over HTTP", (it) => {
  it.effect("PlainTransport ingest: ffmpeg's Opus RTP reaches the producer and a server-side consumer; the session becomes active", () =>
    Effect.gen(function*() {
      const alice = yield* signIn(user("alice"))
      const id = yield* startSession(alice.headers)
      const caps = yield* request("GET", `/api/webrtc/${id}/rtp-capabilities`, undefined, alice.headers)
      assert.strictEqual(caps.status, 200, caps.text)
      assert.isTrue(list(caps.json["codecs"]).some((c) => record(c)["mimeType"] === "audio/opus"))

      const plain = yield* request("POST", `/api/webrtc/${id}/plain-transports`, { comedia: true, rtcpMux: false }, alice.headers)
      assert.strictEqual(plain.status, 201, plain.text)
      assert.strictEqual(plain.json["ip"], "127.0.0.1")
      const port = plain.json["port"]
      assert.isNumber(port)
      const rtcpPort = plain.json["rtcpPort"]
      assert.isNumber(rtcpPort)
      const transportId = TransportId.make(str(plain.json["id"]))
      const media = yield* MediaServer
      const announced = yield* Effect.forkChild(Stream.runCollect(Stream.take(media.onProducer(id), 1)))

      const produced = yield* request("POST", `/api/webrtc/${id}/plain-transports/${transportId}/produce`, {
        kind: "audio",
        rtpParameters: opusRtpParameters()
      }, alice.headers)
      assert.strictEqual(produced.status, 201, produced.text)
      const producerId = ProducerId.make(str(produced.json["producerId"]))
      assert.deepInclude((yield* Fiber.join(announced))[0], { kind: "audio", id: producerId, transportId })
      const session = yield* request("GET", `/api/session/${id}`, undefined, alice.headers)
      assert.strictEqual(session.json["state"], "active")

      const { consumer } = yield* media.createDirectConsumer(id, producerId)
      let packets = 0
      let opus = 0
      consumer.on("rtp", (packet: Buffer) => {
        packets++
        if ((packet[1]! & 0x7f) === consumer.rtpParameters.codecs[0]!.payloadType && packet.length > 12) opus++
      })
      assert.strictEqual(yield* sendOpus(Number(port), Number(rtcpPort)), 0)
      yield* eventually(Effect.sync(() => packets >= 50), "RTP at the consumer", 5000)
      assert.strictEqual(opus, packets)

      const stats = yield* request("GET", `/api/webrtc/${id}/transports/${transportId}/stats`, undefined, alice.headers)
      assert.strictEqual(stats.status, 200, stats.text)
      const producerStats = record(list(stats.json["producers"])[0])
      assert.strictEqual(producerStats["id"], producerId)
      const inbound = record(list(producerStats["stats"])[0])
      assert.isAtLeast(Number(inbound["packetCount"]), 50)
      assert.strictEqual(inbound["ssrc"], 1111)
    }))

  it.effect("WebRTC transport: well-formed parameters on 127.0.0.1, connect, produce-data, restart ICE, delete", () =>
    Effect.gen(function*() {
      const bob = yield* signIn(user("bob"))
      const id = yield* startSession(bob.headers)
      const created = yield* request("POST", `/api/webrtc/${id}/transports`, undefined, bob.headers)
      assert.strictEqual(created.status, 201, created.text)
      const t = created.json
      const transportId = TransportId.make(str(t["id"]))
      const ice = record(t["iceParameters"])
      assert.isString(ice["usernameFragment"])
      assert.isString(ice["password"])
      const candidates = list(t["iceCandidates"])
      assert.isAbove(candidates.length, 0)
      for (const c of candidates) assert.strictEqual(record(c)["ip"], "127.0.0.1")
      assert.isAbove(list(record(t["dtlsParameters"])["fingerprints"]).length, 0)
      assert.strictEqual(record(t["sctpParameters"])["port"], 5000)
      assert.deepStrictEqual(t["iceServers"], [{ urls: [STUN] }])

      const connected = yield* request("POST", `/api/webrtc/${id}/transports/${transportId}/connect`, {
        dtlsParameters: { role: "client", fingerprints: [{ algorithm: "sha-256", value: fingerprint }] }
      }, bob.headers)
      assert.isTrue(connected.status === 200 || connected.status === 204, connected.text)

      const media = yield* MediaServer
      const data = yield* request("POST", `/api/webrtc/${id}/transports/${transportId}/produce-data`, {
        sctpStreamParameters: { streamId: 1, ordered: true },
        label: "pcm",
        protocol: "s16le"
      }, bob.headers)
      assert.strictEqual(data.status, 201, data.text)
      const dataProducerId = DataProducerId.make(str(data.json["dataProducerId"]))
      assert.strictEqual((yield* request("GET", `/api/session/${id}`, undefined, bob.headers)).json["state"], "active")
      const [announced] = yield* Stream.runCollect(Stream.take(media.onProducer(id), 1))
      assert.deepStrictEqual(announced, { kind: "data", id: dataProducerId, transportId, label: "pcm", protocol: "s16le" })
      const { dataConsumer } = yield* media.createDataConsumer(id, dataProducerId)
      assert.strictEqual(dataConsumer.dataProducerId, dataProducerId)

      const restarted = yield* request("POST", `/api/webrtc/${id}/transports/${transportId}/restart-ice`, undefined, bob.headers)
      assert.strictEqual(restarted.status, 200, restarted.text)
      const fresh = record(restarted.json["iceParameters"])
      assert.isString(fresh["usernameFragment"])
      assert.notStrictEqual(fresh["usernameFragment"], ice["usernameFragment"])
      assert.notStrictEqual(fresh["password"], ice["password"])

      const deleted = yield* request("DELETE", `/api/webrtc/${id}/transports/${transportId}`, undefined, bob.headers)
      assert.isTrue(deleted.status === 200 || deleted.status === 204, deleted.text)
      const router = yield* media.router(id)
      assert.isTrue(router._tag === "Some")
      if (router._tag === "Some") assert.notInclude((yield* Effect.promise(() => router.value.dump())).transportIds, transportId)
      assert.strictEqual((yield* request("GET", `/api/webrtc/${id}/transports/${transportId}/stats`, undefined, bob.headers)).status, 404)
    }))

  it.effect("bad input: malformed RTP parameters, unknown ids, another user's session, a stopped session, parameters mediasoup rejects", () =>
    Effect.gen(function*() {
      const carol = yield* signIn(user("carol"))
      const mallory = yield* signIn(user("mallory"))
      const id = yield* startSession(carol.headers)
      const plain = yield* request("POST", `/api/webrtc/${id}/plain-transports`, { comedia: true }, carol.headers)
      const produceOn = (body: unknown, headers = carol.headers, sid = id, tid = str(plain.json["id"])) =>
        request("POST", `/api/webrtc/${sid}/plain-transports/${tid}/produce`, body, headers)

      const malformed = yield* produceOn({ kind: "audio", rtpParameters: { codecs: [{ mimeType: "audio/opus", payloadType: 300, clockRate: 48000 }] } })
      assert.strictEqual(malformed.status, 400, malformed.text)
      assert.include(malformed.text, "payloadType")
      const noCodecs = yield* produceOn({ kind: "audio", rtpParameters: { codecs: "opus" } })
      assert.strictEqual(noCodecs.status, 400, noCodecs.text)
      assert.include(noCodecs.text, "codecs")
      const video = yield* produceOn({ kind: "video", rtpParameters: opusRtpParameters() })
      assert.strictEqual(video.status, 400, video.text)
      assert.include(video.text, "does not match kind video")
      // mediasoup refuses any header extension it does not know: the edge names the field instead.
      const extension = yield* produceOn({
        kind: "audio",
        rtpParameters: { ...opusRtpParameters(), headerExtensions: [{ uri: "urn:example:no-such-extension", id: 3 }] }
      })
      assert.strictEqual(extension.status, 400, extension.text)
      assert.include(extension.text, "headerExtensions")
      const unknownKind = yield* produceOn({ kind: "data", rtpParameters: opusRtpParameters() })
      assert.strictEqual(unknownKind.status, 400, unknownKind.text)
      assert.include(unknownKind.text, "kind")

      const rejected = yield* produceOn({
        kind: "audio",
        rtpParameters: { codecs: [{ mimeType: "audio/nosuchcodec", payloadType: 100, clockRate: 48000 }], encodings: [{ ssrc: 5 }] }
      })
      assert.strictEqual(rejected.status, 400, rejected.text)
      assert.strictEqual(rejected.json["type"], "urn:auralink:problem:media-rejected")
      assert.match(str(rejected.json["detail"]), /codec/i)

      const unknown = yield* produceOn({ kind: "audio", rtpParameters: opusRtpParameters() }, carol.headers, id, "no-such-transport")
      assert.strictEqual(unknown.status, 404, unknown.text)
      assert.strictEqual((yield* request("POST", `/api/webrtc/${id}/transports/nope/restart-ice`, undefined, carol.headers)).status, 404)
      assert.strictEqual((yield* request("GET", `/api/webrtc/no-such-session/rtp-capabilities`, undefined, carol.headers)).status, 400)

      const foreign = yield* produceOn({ kind: "audio", rtpParameters: opusRtpParameters() }, mallory.headers)
      assert.strictEqual(foreign.status, 403, foreign.text)
      assert.strictEqual((yield* request("POST", `/api/webrtc/${id}/transports`, undefined, mallory.headers)).status, 403)
      assert.strictEqual((yield* request("GET", `/api/webrtc/${id}/rtp-capabilities`)).status, 401)

      yield* activateSession(id)
      assert.strictEqual((yield* request("POST", `/api/session/${id}/stop`, undefined, carol.headers)).status, 200)
      const stopped = yield* request("POST", `/api/webrtc/${id}/transports`, undefined, carol.headers)
      assert.strictEqual(stopped.status, 409, stopped.text)
      assert.strictEqual(stopped.json["state"], "completed")
      assert.strictEqual((yield* produceOn({ kind: "audio", rtpParameters: opusRtpParameters() })).status, 409)
    }))
})
