import { assert, layer } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import { spawn } from "node:child_process"
import { RoomStore } from "../../src/layers/RoomStore.ts"
import { RoomName } from "../../src/schemas/ids.ts"
import type { MediaState } from "../../src/schemas/rooms.ts"
import { list, record, request, signIn, str } from "../support/auth.ts"
import { Fake, fakeLiveKitLayer, liveKitEnv } from "../support/livekit.ts"
import { ffmpegOpusRtpArgs } from "../support/ffmpeg-rtp.ts"
import { ffmpegVideoArgs, VIDEO_PAYLOAD_TYPES } from "../support/ffmpeg-video.ts"
import { eventually, mediaServer, opusRtpParameters, user } from "../support/media.ts"
import { REDIS_URL, runPrefix } from "../support/redis.ts"

const API_KEY = "media-state-test-key"
const API_SECRET = "media-state-test-secret-0123456789abcdef"
const INTERVAL_MS = 300
const VIDEO_SSRC = 2222

const FakeLayer = fakeLiveKitLayer(API_KEY, API_SECRET)

const Server = Layer.unwrap(Fake.use((fake) =>
  Effect.succeed(mediaServer({
    REDIS_URL,
    REDIS_KEY_PREFIX: `${runPrefix()}:`,
    ...liveKitEnv(fake, API_KEY, API_SECRET),
    QOS_SAMPLE_INTERVAL_MS: String(INTERVAL_MS),
    ROOM_SYNC_INTERVAL_MS: "1000"
  }))
)).pipe(Layer.provideMerge(FakeLayer))

/** Runs ffmpeg with `args` to the end (its exit code). */
const ffmpeg = (args: ReadonlyArray<string>) =>
  Effect.callback<number>((resume) => {
    const child = spawn("ffmpeg", args, { stdio: "ignore" })
    child.on("exit", (code) => resume(Effect.succeed(code ?? -1)))
    child.on("error", (error) => resume(Effect.die(error)))
  })

/** ffmpeg's output to a plain transport (no RTCP mux): RTP to `port`, its sender reports to `rtcpPort`. */
const rtpTo = (
  port: number,
  rtcpPort: number,
  ssrc: number
) => ["-ssrc", String(ssrc), "-f", "rtp", `rtp://127.0.0.1:${port}?rtcpport=${rtcpPort}&pkt_size=1200`]

/** A plain transport of the session producing `kind`: where ffmpeg sends. */
const plainProducer = (id: string, headers: Record<string, string>, kind: "audio" | "video") =>
  Effect.gen(function*() {
    const plain = yield* request("POST", `/api/webrtc/${id}/plain-transports`, { comedia: true, rtcpMux: false }, headers)
    assert.strictEqual(plain.status, 201, plain.text)
    const rtpParameters = kind === "audio"
      ? opusRtpParameters()
      : { codecs: [{ mimeType: "video/VP8", payloadType: VIDEO_PAYLOAD_TYPES.VP8, clockRate: 90000 }], encodings: [{ ssrc: VIDEO_SSRC }] }
    const produced = yield* request("POST", `/api/webrtc/${id}/plain-transports/${str(plain.json["id"])}/produce`, { kind, rtpParameters }, headers)
    assert.strictEqual(produced.status, 201, produced.text)
    return { port: Number(plain.json["port"]), rtcpPort: Number(plain.json["rtcpPort"]) }
  })

/** 5 s of Opus (real time, 64 kbps). */
const sendAudio = (to: { readonly port: number; readonly rtcpPort: number }) => {
  const args = ffmpegOpusRtpArgs("127.0.0.1", to.port, { realtime: true, payloadType: 100, toneMs: 1000 })
  args.splice(args.length - 3, 3, ...rtpTo(to.port, to.rtcpPort, 1111))
  return ffmpeg(args)
}

/** 3 s of VP8 test pattern (320x240, real time). */
const sendVideo = (to: { readonly port: number; readonly rtcpPort: number }) =>
  ffmpeg(["-re", ...ffmpegVideoArgs("VP8", ["-payload_type", String(VIDEO_PAYLOAD_TYPES.VP8), ...rtpTo(to.port, to.rtcpPort, VIDEO_SSRC)])])

const unique = (name: string) => `${name}-${crypto.randomUUID().slice(0, 8)}`

layer(Server, { excludeTestServices: true, timeout: "60 seconds" })("a room's media state from live mediasoup stats", (it) => {
  it.effect("RoomStore and the LiveKit room's metadata show the session's streams while they flow, and nothing once it ends", () =>
    Effect.gen(function*() {
      const fake = yield* Fake
      const store = yield* RoomStore
      const room = unique("conference")
      const identity = user("ada")
      yield* Effect.promise(() => fake.addRoom(room, { metadata: "{\"topic\":\"demo\"}" }))
      const ada = yield* signIn(identity)
      const started = yield* request("POST", "/api/session", { room, participantIdentity: identity, aic: false }, ada.headers)
      assert.strictEqual(started.status, 201, started.text)
      const id = str(started.json["id"])
      const audio = yield* plainProducer(id, ada.headers, "audio")
      const video = yield* plainProducer(id, ada.headers, "video")

      // Sampled while the media flows: every state this instance wrote.
      const seen: Array<MediaState> = []
      const roomName = RoomName.make(room)
      const sample = Effect.gen(function*() {
        while (true) {
          seen.push(...yield* store.mediaStates(roomName))
          yield* Effect.promise(() => new Promise((r) => setTimeout(r, INTERVAL_MS)))
        }
      })
      const sampler = yield* Effect.forkChild(sample)
      const [audioExit, videoExit] = yield* Effect.all([sendAudio(audio), sendVideo(video)], { concurrency: 2 })
      assert.strictEqual(audioExit, 0)
      assert.strictEqual(videoExit, 0)
      // The LiveKit room got the combined state beside its own key, while the media flowed.
      const metadata = record(JSON.parse(fake.roomMetadata(room) ?? "{}"))
      yield* Fiber.interrupt(sampler)

      const both = seen.filter((s) => s.activeStreams === 2 && s.qualityLevel !== "audio" && s.qualityLevel !== "none")
      assert.isAtLeast(both.length, 3, JSON.stringify(seen))
      const peak = both.reduce((a, s) => s.totalBandwidthKbps > a.totalBandwidthKbps ? s : a)
      console.log(`media state samples: ${seen.length}; peak ${JSON.stringify(peak)}`)
      assert.isAbove(peak.totalBandwidthKbps, 64)
      assert.isBelow(peak.totalBandwidthKbps, 5000)
      assert.strictEqual(peak.sessions, 1)
      assert.isFalse(peak.aicEnabled)
      assert.strictEqual(peak.compressionRatio, 1)
      assert.strictEqual(metadata["topic"], "demo")
      const published = record(metadata["auralink"])
      assert.strictEqual(published["conferenceId"], room)
      assert.strictEqual(published["sessions"], 1)
      assert.isAtLeast(Number(published["activeStreams"]), 1)

      // The participant's QoS history: measured samples of this session, one per interval while it had streams.
      const history = yield* request("GET", `/api/participants/${encodeURIComponent(identity)}/qos?limit=100`, undefined, ada.headers)
      assert.strictEqual(history.status, 200, history.text)
      const samples = list(history.json["samples"]).map(record)
      assert.isAtLeast(samples.length, 5, history.text)
      assert.isTrue(samples.every((q) => q["source"] === "measured" && q["sessionId"] === id && q["mosSource"] === "e-model"))
      const flowing = samples.filter((q) => Number(q["bandwidthKbps"]) > 64)
      assert.isAtLeast(flowing.length, 3, history.text)
      for (const q of flowing) {
        // Loopback: next to no loss, jitter of a few ms; ffmpeg sends no RTCP XR, so no round trip.
        assert.isAtMost(Number(q["packetLossPercent"]), 5)
        assert.isAbove(Number(q["jitterMs"]), 0)
        assert.isBelow(Number(q["jitterMs"]), 50)
        assert.isNull(q["rttMs"])
        assert.isAbove(Number(q["mosScore"]), 3.5)
      }
      console.log(
        `measured QoS samples: ${samples.length}; while flowing: ${
          JSON.stringify(flowing.map((q) => [q["packetLossPercent"], q["jitterMs"], q["bandwidthKbps"], q["mosScore"]]))
        }`
      )

      // The session ends: this instance's state leaves the room, and the auralink key leaves LiveKit's metadata.
      const stopped = yield* request("POST", `/api/session/${id}/stop`, undefined, ada.headers)
      assert.strictEqual(stopped.status, 200, stopped.text)
      yield* eventually(Effect.map(store.mediaStates(roomName), (states) => states.length === 0), "the room's media state gone", 5_000)
      yield* eventually(Effect.sync(() => fake.roomMetadata(room) === "{\"topic\":\"demo\"}"), "the auralink key gone from LiveKit", 5_000)
    }))

  it.effect("metadata that is not a JSON object is kept under `metadata`", () =>
    Effect.gen(function*() {
      const fake = yield* Fake
      const store = yield* RoomStore
      const room = unique("plain-text")
      yield* Effect.promise(() => fake.addRoom(room, { metadata: "just words" }))
      const bob = yield* signIn(user("bob"))
      const started = yield* request("POST", "/api/session", { room }, bob.headers)
      assert.strictEqual(started.status, 201, started.text)
      yield* eventually(Effect.sync(() => (fake.roomMetadata(room) ?? "").includes("auralink")), "the auralink key in LiveKit", 5_000)
      const metadata = record(JSON.parse(fake.roomMetadata(room) ?? "{}"))
      assert.strictEqual(metadata["metadata"], "just words")
      // Pending, no media: one session, no streams.
      const state = record(metadata["auralink"])
      assert.deepStrictEqual([state["sessions"], state["activeStreams"], state["qualityLevel"], state["totalBandwidthKbps"]], [1, 0, "none", 0])
      const states = yield* store.mediaStates(RoomName.make(room))
      assert.strictEqual(states.length, 1)
    }))
})
