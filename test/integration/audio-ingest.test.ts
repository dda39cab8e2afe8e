import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { AppConfig } from "../../src/layers/Config.ts"
import { record, request, signIn, str } from "../support/auth.ts"
import { baseUrl, readEvents } from "../support/http.ts"
import { startFakeAsr } from "../support/fake-asr.ts"
import { ffmpegOpusRtpArgs } from "../support/ffmpeg-rtp.ts"
import { checkMetricsWithPromtool } from "../support/promtool.ts"
import { eventually, mediaServer, opusRtpParameters, sessionRecordings, startSession, user } from "../support/media.ts"
import { checkToneSequence, concatSamples } from "../support/tones.ts"

const fakeAsr = await startFakeAsr()

/** The sender's SRTP keying: `-srtp_out_*` for ffmpeg, `srtpParameters` for the transport's connect. */
interface SrtpKey {
  readonly cryptoSuite: "AES_CM_128_HMAC_SHA1_80" | "AES_CM_128_HMAC_SHA1_32"
  readonly keyBase64: string
}
const newSrtpKey = (cryptoSuite: SrtpKey["cryptoSuite"] = "AES_CM_128_HMAC_SHA1_80"): SrtpKey => ({
  cryptoSuite,
  keyBase64: randomBytes(30).toString("base64")
})

/** ffmpeg sends the test's tone sequence as Opus RTP (real time) to a comedia plain transport, SRTP with `srtp`. */
const sendTones = (port: number, rtcpPort: number, srtp?: SrtpKey) =>
  Effect.callback<number>((resume) => {
    const args = ffmpegOpusRtpArgs("127.0.0.1", port, { realtime: true, payloadType: 100 })
    // ssrc as produced, RTCP to the transport's own RTCP port (no mux: see signaling.test.ts).
    const target = srtp === undefined
      ? ["-f", "rtp", `rtp://127.0.0.1:${port}?rtcpport=${rtcpPort}`]
      : ["-f", "rtp", "-srtp_out_suite", srtp.cryptoSuite, "-srtp_out_params", srtp.keyBase64, `srtp://127.0.0.1:${port}?rtcpport=${rtcpPort}`]
    args.splice(args.length - 3, 3, "-ssrc", "1111", ...target)
    const ffmpeg = spawn("ffmpeg", args, { stdio: "ignore" })
    ffmpeg.on("exit", (code) => resume(Effect.succeed(code ?? -1)))
    ffmpeg.on("error", (error) => resume(Effect.die(error)))
  })

/**
 * A plain transport producing Opus on the session, fed by ffmpeg. With `srtp`, the transport is made
 * with SRTP on, connected with `srtp.receiver` (the key the server decrypts with) and ffmpeg encrypts
 * with `srtp.sender` (the same key, or a wrong one).
 */
const ingestInto = (id: string, headers: Record<string, string>, srtp?: { readonly receiver: SrtpKey; readonly sender: SrtpKey }) =>
  Effect.gen(function*() {
    const alice = { headers }
    const srtpOptions = srtp === undefined ? {} : { enableSrtp: true, srtpCryptoSuite: srtp.receiver.cryptoSuite }
    const plain = yield* request("POST", `/api/webrtc/${id}/plain-transports`, { comedia: true, rtcpMux: false, ...srtpOptions }, alice.headers)
    assert.strictEqual(plain.status, 201, plain.text)
    const transportId = str(plain.json["id"])
    if (srtp !== undefined) {
      assert.strictEqual(record(plain.json["srtpParameters"])["cryptoSuite"], srtp.receiver.cryptoSuite)
      const connected = yield* request("POST", `/api/webrtc/${id}/plain-transports/${transportId}/connect`, { srtpParameters: srtp.receiver }, alice.headers)
      assert.strictEqual(connected.status, 204, connected.text)
    }
    const produced = yield* request(
      "POST",
      `/api/webrtc/${id}/plain-transports/${transportId}/produce`,
      { kind: "audio", rtpParameters: opusRtpParameters() },
      alice.headers
    )
    assert.strictEqual(produced.status, 201, produced.text)
    assert.strictEqual(yield* sendTones(Number(plain.json["port"]), Number(plain.json["rtcpPort"]), srtp?.sender), 0)
  })

/** A session of a new user fed by ffmpeg over a plain transport. */
const plainTransportIngest = Effect.gen(function*() {
  const alice = yield* signIn(user("alice"))
  const id = yield* startSession(alice.headers)
  yield* ingestInto(id, alice.headers)
  return { id, headers: alice.headers }
})

const pcmSamples = (buffers: ReadonlyArray<Buffer>) =>
  concatSamples(buffers.map((b) => new Int16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))))

/** Opens the session's events (token in the query, as EventSource would), ingests, and checks the events. */
const followIngest = (id: string, headers: { readonly authorization: string }) =>
  Effect.gen(function*() {
    const url = yield* baseUrl
    const token = headers.authorization.slice("Bearer ".length)
    const response = yield* Effect.promise(() => fetch(`${url}/api/webrtc/${id}/events?access_token=${token}`))
    assert.strictEqual(response.status, 200)
    assert.include(response.headers.get("content-type") ?? "", "text/event-stream")
    const events = readEvents(response)
    yield* ingestInto(id, headers)
    yield* eventually(Effect.sync(() => events.text().includes("event: transcript")), "a transcript event")
    assert.include(events.text(), "event: state\ndata: {\"state\":\"pending\"}")
    assert.include(events.text(), "event: state\ndata: {\"state\":\"active\"}")
    assert.include(events.text(), `"sessionId":"${id}"`)
    events.cancel()
  })

describe("audio ingress over a PlainTransport (ffmpeg Opus RTP)", () => {
  layer(mediaServer({ ASR_GATEWAY_URL: fakeAsr.url }), { timeout: 60_000 })("to the ASR gateway", (it) => {
    it.effect("the fake ASR gateway receives the tone sequence, in order, without sequence gaps", () =>
      Effect.gen(function*() {
        const { id } = yield* plainTransportIngest
        yield* eventually(Effect.sync(() => fakeAsr.chunks(id).length >= 90), "about 2 s of audio at the gateway")
        const chunks = fakeAsr.chunks(id)
        const sequences = chunks.map((c) => c.sequence)
        for (let i = 1; i < sequences.length; i++) assert.strictEqual(sequences[i], sequences[i - 1]! + 1, `gap after ${sequences[i - 1]}`)
        assert.isTrue(chunks.every((c) => c.sampleRate === 16000))
        const check = checkToneSequence(pcmSamples(chunks.map((c) => c.pcm)), 16000)
        assert.isTrue(check.ok, check.reason)
        // With the audio, media and ASR series filled in, /metrics still passes promtool.
        const metrics = (yield* request("GET", "/metrics")).text
        assert.include(metrics, "auralink_audio_server_latency_seconds_bucket{le=\"0.005\",path=\"rtp\"}")
        const promtool = checkMetricsWithPromtool(metrics)
        assert.strictEqual(promtool.status, 0, promtool.output)
      }))
  })

  layer(mediaServer({ ASR_GATEWAY_URL: fakeAsr.url }), { timeout: 60_000 })("SRTP (SDES keys over signaling)", (it) => {
    for (const cryptoSuite of ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"] as const) {
      it.effect(`${cryptoSuite}: ffmpeg's SRTP reaches the gateway as the tone sequence, without gaps`, () =>
        Effect.gen(function*() {
          const alice = yield* signIn(user("alice"))
          const id = yield* startSession(alice.headers)
          const key = newSrtpKey(cryptoSuite)
          yield* ingestInto(id, alice.headers, { receiver: key, sender: key })
          yield* eventually(Effect.sync(() => fakeAsr.chunks(id).length >= 90), "about 2 s of audio at the gateway")
          const sequences = fakeAsr.chunks(id).map((c) => c.sequence)
          for (let i = 1; i < sequences.length; i++) assert.strictEqual(sequences[i], sequences[i - 1]! + 1, `gap after ${sequences[i - 1]}`)
          const check = checkToneSequence(pcmSamples(fakeAsr.chunks(id).map((c) => c.pcm)), 16000)
          assert.isTrue(check.ok, check.reason)
        }))
    }

    it.effect("packets under another key fail authentication: nothing reaches the gateway", () =>
      Effect.gen(function*() {
        const alice = yield* signIn(user("alice"))
        const id = yield* startSession(alice.headers)
        yield* ingestInto(id, alice.headers, { receiver: newSrtpKey(), sender: newSrtpKey() })
        yield* Effect.promise(() => new Promise((r) => setTimeout(r, 300)))
        assert.strictEqual(fakeAsr.chunks(id).length, 0)
      }))

    it.effect("bad keying is a 400 naming the field; a WebRTC or unknown transport id is a 404; nothing changes", () =>
      Effect.gen(function*() {
        const alice = yield* signIn(user("alice"))
        const id = yield* startSession(alice.headers)
        const plain = yield* request("POST", `/api/webrtc/${id}/plain-transports`, { comedia: true, enableSrtp: true }, alice.headers)
        const transportId = str(plain.json["id"])
        const connect = (transport: string, body: unknown) => request("POST", `/api/webrtc/${id}/plain-transports/${transport}/connect`, body, alice.headers)
        for (
          const body of [
            {},
            { srtpParameters: { cryptoSuite: "AES_CM_128_HMAC_SHA1_80", keyBase64: "c2hvcnQ=" } },
            { srtpParameters: { cryptoSuite: "NULL", keyBase64: newSrtpKey().keyBase64 } },
            // A 30-byte AES_CM key for a GCM suite (which needs 28 or 44 bytes).
            { srtpParameters: { cryptoSuite: "AEAD_AES_256_GCM", keyBase64: newSrtpKey().keyBase64 } }
          ]
        ) {
          const res = yield* connect(transportId, body)
          assert.strictEqual(res.status, 400, res.text)
          assert.include(res.text, "srtpParameters")
        }
        const webrtc = yield* request("POST", `/api/webrtc/${id}/transports`, {}, alice.headers)
        assert.strictEqual((yield* connect(str(webrtc.json["id"]), { srtpParameters: newSrtpKey() })).status, 404)
        assert.strictEqual((yield* connect(crypto.randomUUID(), { srtpParameters: newSrtpKey() })).status, 404)
        // The transport still takes its keying.
        assert.strictEqual((yield* connect(transportId, { srtpParameters: newSrtpKey() })).status, 204)
      }))

    it.effect("the AEAD GCM suites: the transport answers with a key of the suite's length and takes the sender's", () =>
      Effect.gen(function*() {
        const alice = yield* signIn(user("alice"))
        const id = yield* startSession(alice.headers)
        for (const [cryptoSuite, bytes] of [["AEAD_AES_128_GCM", 28], ["AEAD_AES_256_GCM", 44]] as const) {
          const plain = yield* request(
            "POST",
            `/api/webrtc/${id}/plain-transports`,
            { comedia: true, enableSrtp: true, srtpCryptoSuite: cryptoSuite },
            alice.headers
          )
          assert.strictEqual(plain.status, 201, plain.text)
          const answered = record(plain.json["srtpParameters"])
          assert.strictEqual(answered["cryptoSuite"], cryptoSuite)
          assert.strictEqual(Buffer.from(str(answered["keyBase64"]), "base64").byteLength, bytes)
          const sender = { cryptoSuite, keyBase64: randomBytes(bytes).toString("base64") }
          const connected = yield* request(
            "POST",
            `/api/webrtc/${id}/plain-transports/${str(plain.json["id"])}/connect`,
            { srtpParameters: sender },
            alice.headers
          )
          assert.strictEqual(connected.status, 204, connected.text)
        }
      }))
  })

  layer(mediaServer({ ASR_GATEWAY_URL: fakeAsr.url }), { timeout: 60_000 })("server-sent events", (it) => {
    it.effect("sessions one after another each get their own events (the stream keeps its request scope)", () =>
      Effect.gen(function*() {
        for (let round = 0; round < 2; round++) {
          const alice = yield* signIn(user("alice"))
          yield* followIngest(yield* startSession(alice.headers), alice.headers)
        }
      }))

    it.effect("the owner sees the state changes and the gateway's transcripts; others are refused", () =>
      Effect.gen(function*() {
        const alice = yield* signIn(user("alice"))
        const mallory = yield* signIn(user("mallory"))
        const id = yield* startSession(alice.headers)
        const url = yield* baseUrl
        yield* followIngest(id, alice.headers)

        const session = yield* request("GET", `/api/session/${id}`, undefined, alice.headers)
        assert.isAbove(JSON.stringify(session.json["context"]).length, 2, "final transcripts are in the session context")

        const foreign = yield* Effect.promise(() => fetch(`${url}/api/webrtc/${id}/events`, { headers: mallory.headers }))
        assert.strictEqual(foreign.status, 403)
        const anonymous = yield* Effect.promise(() => fetch(`${url}/api/webrtc/${id}/events?access_token=forged`))
        assert.strictEqual(anonymous.status, 401)
        assert.strictEqual(anonymous.headers.get("www-authenticate"), "Bearer error=\"invalid_token\"")
        const unknown = yield* Effect.promise(() => fetch(`${url}/api/webrtc/${crypto.randomUUID()}/events`, { headers: alice.headers }))
        assert.strictEqual(unknown.status, 404)
      }))
  })

  layer(mediaServer({}), { timeout: 60_000 })("to the recording sink (no ASR gateway)", (it) => {
    it.effect("the session's WAV file, finalized on stop, holds the tone sequence", () =>
      Effect.gen(function*() {
        const { headers, id } = yield* plainTransportIngest
        const { service } = yield* AppConfig
        // One audio producer: one WAV file, <DATA_DIR>/recordings/<sessionId>/<producerId>.wav.
        const [path = join(service.dataDir, "recordings", id, "none.wav")] = sessionRecordings(service.dataDir, id)
        // ffmpeg has finished; give the pipeline a moment to drain before the stop closes it.
        yield* Effect.promise(() => new Promise((r) => setTimeout(r, 500)))
        assert.strictEqual((yield* request("POST", `/api/session/${id}/stop`, {}, headers)).status, 200)
        yield* eventually(
          Effect.sync(() => {
            try {
              return readFileSync(path).readUInt32LE(40) > 0
            } catch {
              return false
            }
          }),
          "the WAV header to be finalized"
        )
        const wav = readFileSync(path)
        assert.strictEqual(wav.toString("ascii", 0, 4), "RIFF")
        assert.strictEqual(wav.readUInt32LE(24), 16000)
        const dataBytes = wav.readUInt32LE(40)
        assert.strictEqual(dataBytes, wav.length - 44)
        const check = checkToneSequence(pcmSamples([wav.subarray(44)]), 16000)
        assert.isTrue(check.ok, check.reason)
      }))
  })
})
