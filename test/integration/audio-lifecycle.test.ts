import { assert, describe, layer } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { spawn } from "node:child_process"
import { readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { openPcmChannel, type PcmChannel } from "../../bench/datachannel-client.ts"
import { importRecordKeys } from "../../bench/dtls-record-keys.ts"
import { AppConfig } from "../../src/layers/Config.ts"
import { Health } from "../../src/layers/Health.ts"
import { MediaServer } from "../../src/layers/MediaServer.ts"
import { encodeChunk } from "../../src/programs/audio/pcm.ts"
import { record, request, signIn, str } from "../support/auth.ts"
import { startFakeAsr } from "../support/fake-asr.ts"
import { ffmpegOpusRtpArgs } from "../support/ffmpeg-rtp.ts"
import { baseUrl, readEvents } from "../support/http.ts"
import { NO_SESSION_CAPS } from "../support/process.ts"
import { eventually, mediaServer, opusRtpParameters, sessionRecordings, startSession, user } from "../support/media.ts"
import { checkToneSequence, concatSamples, toneSequence } from "../support/tones.ts"

const fakeAsr = await startFakeAsr()

/** 20 ms PCM chunks of the test's tone sequence (2 s), sequence numbers from `first`. */
const pcmChunksFrom = (first: number) => {
  const samples = toneSequence({ sampleRate: 16_000 })
  const out: Array<Uint8Array> = []
  for (let i = 0, n = 0; i + 320 <= samples.length; i += 320, n++) {
    out.push(encodeChunk({ sequence: first + n, captureTimeMs: Date.now() - 5000 + n * 20, samples: samples.subarray(i, i + 320) }))
  }
  return out
}
const pcmChunks = pcmChunksFrom(0)

/** A session's `audio-pcm` data channel from a werift peer (closed with the scope). */
const pcmChannel = (id: string, headers: Record<string, string>) =>
  Effect.gen(function*() {
    const url = yield* baseUrl
    const api = async (method: string, path: string, body: unknown, status: number): Promise<unknown> => {
      const init: RequestInit = { method, headers: { ...headers, "content-type": "application/json" } }
      if (body !== undefined) init.body = JSON.stringify(body)
      const response = await fetch(`${url}${path}`, init)
      const text = await response.text()
      if (response.status !== status) throw new Error(`${method} ${path}: ${response.status} ${text}`)
      return text.length > 0 ? JSON.parse(text) : undefined
    }
    const channel: PcmChannel = yield* Effect.acquireRelease(Effect.promise(() => openPcmChannel(api, id)), (c) => Effect.promise(() => c.close()))
    return { ...channel, api }
  })

/** Sends the PCM chunks `every` ms apart (0: at once), `passes` times over with ascending sequence numbers. */
const sendPcm = (channel: PcmChannel, every = 0, passes = 1) =>
  Effect.promise(async () => {
    for (const chunk of Array.from({ length: passes }, (_, p) => pcmChunksFrom(p * pcmChunks.length)).flat()) {
      channel.channel.send(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
      if (every > 0) await new Promise((r) => setTimeout(r, every))
    }
  })

/** A plain transport producing Opus on the session, fed the tone sequence by ffmpeg in real time. */
const opusProducer = (id: string, headers: Record<string, string>) =>
  Effect.gen(function*() {
    const plain = yield* request("POST", `/api/webrtc/${id}/plain-transports`, { comedia: true, rtcpMux: false }, headers)
    assert.strictEqual(plain.status, 201, plain.text)
    const produced = yield* request("POST", `/api/webrtc/${id}/plain-transports/${str(plain.json["id"])}/produce`, {
      kind: "audio",
      rtpParameters: opusRtpParameters()
    }, headers)
    assert.strictEqual(produced.status, 201, produced.text)
    const args = ffmpegOpusRtpArgs("127.0.0.1", Number(plain.json["port"]), { realtime: true, payloadType: 100 })
    args.splice(args.length - 3, 3, "-ssrc", "1111", "-f", "rtp", `rtp://127.0.0.1:${Number(plain.json["port"])}?rtcpport=${Number(plain.json["rtcpPort"])}`)
    const code = yield* Effect.callback<number>((resume) => {
      const ffmpeg = spawn("ffmpeg", args, { stdio: "ignore" })
      ffmpeg.on("exit", (c) => resume(Effect.succeed(c ?? -1)))
      ffmpeg.on("error", (error) => resume(Effect.die(error)))
    })
    assert.strictEqual(code, 0)
    return str(produced.json["producerId"])
  })

const samplesOf = (buffers: ReadonlyArray<Buffer>) =>
  concatSamples(buffers.map((b) => new Int16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))))

/** Makes `<DATA_DIR>/recordings` unusable (a file where the directory was): the recording sink cannot open. */
const breakRecordings = (dataDir: string) => {
  const directory = join(dataDir, "recordings")
  rmSync(directory, { recursive: true, force: true })
  writeFileSync(directory, "not a directory")
  return () => rmSync(directory, { force: true })
}

/** The `/status` section `asr` (open sink streams). */
const asrStatus = Effect.map(Effect.flatMap(Health, (h) => h.sections), (s) => record(s["asr"]))

const sleep = (ms: number) => Effect.promise(() => new Promise((r) => setTimeout(r, ms)))

/** Stops `id` once the racing produce has activated it (a pending session's stop now cancels it, so the state is read first). */
const stopWhenActive = (id: string, headers: Record<string, string>) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 400; attempt++) {
      const { state } = (yield* request("GET", `/api/session/${id}`, undefined, headers)).json
      if (state === "active") {
        const res = yield* request("POST", `/api/session/${id}/stop`, {}, headers)
        if (res.status === 200) return
        assert.strictEqual(res.status, 409, res.text)
      }
      yield* sleep(attempt < 50 ? 0 : 5)
    }
    assert.fail(`session ${id} never became stoppable`)
  })

describe("audio pipeline lifecycle", () => {
  layer(mediaServer({ ASR_GATEWAY_URL: fakeAsr.url }), { timeout: 60_000 })("two audio paths in one session (ASR gateway)", (it) => {
    it.effect("PCM data channel and Opus RTP both reach the gateway, each on its own stream, tagged with its producer", () =>
      Effect.gen(function*() {
        const alice = yield* signIn(user("alice"))
        const id = yield* startSession(alice.headers)
        const pcm = yield* pcmChannel(id, alice.headers)
        yield* sendPcm(pcm)
        const opusId = yield* opusProducer(id, alice.headers)
        yield* eventually(Effect.sync(() => (fakeAsr.byProducer(id).get(opusId)?.length ?? 0) >= 90), "Opus audio at the gateway")
        yield* eventually(Effect.sync(() => fakeAsr.byProducer(id).size === 2), "two producers at the gateway")
        const [pcmId, pcmAudio] = [...fakeAsr.byProducer(id)].find(([producer]) => producer !== opusId)!
        assert.deepStrictEqual(pcmAudio.map((c) => c.sequence), pcmChunks.map((_, n) => n))
        assert.isTrue(pcmAudio.every((c) => c.path === "datachannel" && c.producerId === pcmId))
        const opus = fakeAsr.byProducer(id).get(opusId)!
        assert.isTrue(opus.every((c) => c.path === "rtp"))
        for (const [name, chunks] of [["pcm", pcmAudio], ["opus", opus]] as const) {
          const check = checkToneSequence(samplesOf(chunks.map((c) => c.pcm)), 16_000)
          assert.isTrue(check.ok, `${name}: ${check.reason}`)
        }
        assert.strictEqual(Number((yield* asrStatus)["streams"]), 2)
      }))

    it.effect("a bench generator's peer, its DTLS record keys imported once, still seals and opens every record: 3 passes of chunks arrive in order", () =>
      Effect.gen(function*() {
        const bob = yield* signIn(user("bob"))
        const id = yield* startSession(bob.headers)
        const pcm = yield* pcmChannel(id, bob.headers)
        importRecordKeys(pcm.pc)
        // Reliable SCTP: the service's SACKs must open (decrypt) for the peer to go on sending past its window.
        yield* sendPcm(pcm, 2, 3)
        const expected = pcmChunks.length * 3
        yield* eventually(Effect.sync(() => [...fakeAsr.byProducer(id).values()][0]?.length === expected), `${expected} chunks at the gateway`)
        const [chunks = []] = fakeAsr.byProducer(id).values()
        assert.deepStrictEqual(chunks.map((c) => c.sequence), Array.from({ length: expected }, (_, n) => n))
      }))
  })

  layer(mediaServer({}), { timeout: 60_000 })("two audio paths in one session (recording sink)", (it) => {
    it.effect("PCM data channel and Opus RTP: one WAV file each, both holding the tone sequence", () =>
      Effect.gen(function*() {
        const { service } = yield* AppConfig
        const alice = yield* signIn(user("alice"))
        const id = yield* startSession(alice.headers)
        const opus = yield* Effect.forkChild(opusProducer(id, alice.headers))
        const pcm = yield* pcmChannel(id, alice.headers)
        yield* sendPcm(pcm, 5)
        const opusId = yield* Fiber.join(opus)
        yield* sleep(500)
        assert.strictEqual((yield* request("POST", `/api/session/${id}/stop`, {}, alice.headers)).status, 200)
        yield* eventually(Effect.map(asrStatus, (s) => s["streams"] === 0), "both recordings finished")
        const files = sessionRecordings(service.dataDir, id)
        assert.strictEqual(files.length, 2, files.join(", "))
        assert.include(files.map((f) => f.split("/").pop()), `${opusId}.wav`)
        for (const file of files) {
          const wav = readFileSync(file)
          assert.strictEqual(wav.readUInt32LE(40), wav.length - 44, file)
          const check = checkToneSequence(samplesOf([wav.subarray(44)]), 16_000)
          assert.isTrue(check.ok, `${file}: ${check.reason}`)
        }
      }))
  })

  layer(mediaServer({ AUDIO_PIPELINE_RESTARTS: "8", AUDIO_PIPELINE_RESTART_BASE_MS: "100", AUDIO_PIPELINE_RESTART_MAX_MS: "400" }), {
    timeout: 60_000,
    excludeTestServices: true
  })("a failing sink that recovers", (it) => {
    it.effect("the pipeline is restarted with backoff: once the sink opens again the audio is recorded, the session stays active", () =>
      Effect.gen(function*() {
        const { service } = yield* AppConfig
        const restore = breakRecordings(service.dataDir)
        const alice = yield* signIn(user("alice"))
        const id = yield* startSession(alice.headers)
        const pcm = yield* pcmChannel(id, alice.headers)
        const sending = yield* Effect.forkChild(sendPcm(pcm, 20))
        yield* sleep(400)
        assert.deepStrictEqual(sessionRecordings(service.dataDir, id), [], "nothing recorded while the sink fails")
        restore()
        yield* Fiber.join(sending)
        yield* eventually(Effect.sync(() => sessionRecordings(service.dataDir, id).length === 1), "the recording opened after a restart")
        const session = yield* request("GET", `/api/session/${id}`, undefined, alice.headers)
        assert.strictEqual(session.json["state"], "active")
        assert.strictEqual((yield* request("POST", `/api/session/${id}/stop`, {}, alice.headers)).status, 200)
        yield* eventually(Effect.map(asrStatus, (s) => s["streams"] === 0), "the recording finished")
        const wav = readFileSync(sessionRecordings(service.dataDir, id)[0]!)
        assert.isAbove(wav.readUInt32LE(40), 0, "audio sent after the sink recovered was recorded")
      }))
  })

  layer(mediaServer({ AUDIO_PIPELINE_RESTARTS: "2", AUDIO_PIPELINE_RESTART_BASE_MS: "700", AUDIO_PIPELINE_RESTART_MAX_MS: "2000" }), {
    timeout: 60_000,
    excludeTestServices: true
  })("a sink that stays broken", (it) => {
    it.effect("after its restarts the session goes to error with the reason, told on the events channel and over SSE", () =>
      Effect.gen(function*() {
        const { service } = yield* AppConfig
        breakRecordings(service.dataDir)
        const alice = yield* signIn(user("alice"))
        const id = yield* startSession(alice.headers)
        const url = yield* baseUrl
        const sse = readEvents(yield* Effect.promise(() => fetch(`${url}/api/webrtc/${id}/events`, { headers: alice.headers })))
        const pcm = yield* pcmChannel(id, alice.headers)
        // The server's events channel on the same transport.
        const events = record(yield* Effect.promise(() => pcm.api("POST", `/api/webrtc/${id}/transports/${pcm.transportId}/events-channel`, undefined, 201)))
        const channel = pcm.pc.createDataChannel("auralink-events", {
          negotiated: true,
          id: Number(record(events["sctpStreamParameters"])["streamId"]),
          protocol: "json"
        })
        const messages: Array<string> = []
        channel.onMessage.subscribe((data) => void messages.push(data.toString()))
        yield* eventually(
          Effect.map(request("GET", `/api/session/${id}`, undefined, alice.headers), (s) => s.json["state"] === "error"),
          "the session in error"
        )
        const session = yield* request("GET", `/api/session/${id}`, undefined, alice.headers)
        assert.include(String(session.json["error"]), "audio pipeline of producer")
        assert.include(String(session.json["error"]), "recording")
        yield* eventually(Effect.sync(() => messages.some((m) => m.includes("\"type\":\"session_error\""))), "a session_error on the events channel")
        const message = record(JSON.parse(messages.find((m) => m.includes("session_error"))!))
        assert.strictEqual(message["reason"], "audio_pipeline_failed")
        assert.strictEqual(message["detail"], session.json["error"])
        yield* eventually(Effect.sync(() => sse.text().includes("\"state\":\"error\"")), "the error state over SSE")
        assert.include(sse.text(), `"error":${JSON.stringify(session.json["error"])}`)
        sse.cancel()
        // Its media is closed with it.
        const media = yield* MediaServer
        yield* eventually(Effect.map(media.status, (s) => !s.sessions.some((m) => m.id === id)), "the session's media closed")
      }))
  })

  layer(mediaServer({ ASR_GATEWAY_URL: fakeAsr.url }), { timeout: 60_000, excludeTestServices: true })("a stalled database", (it) => {
    it.effect("while the sessions table is locked for 4 s, the audio keeps flowing: the keep-alive write never holds it up", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient
        const alice = yield* signIn(user("alice"))
        // Idle timeout 10 s: the pipeline refreshes it every 2.5 s, so one refresh falls inside the stall.
        const started = yield* request("POST", "/api/session", { idleTimeoutSeconds: 10 }, alice.headers)
        assert.strictEqual(started.status, 201, started.text)
        const id = str(started.json["id"])
        const pcm = yield* pcmChannel(id, alice.headers)
        const sending = yield* Effect.forkChild(sendPcm(pcm, 20, 3))
        yield* sleep(500)
        // The stall: a transaction holds the sessions table; every read and write of it waits (longer than the 2 s buffer).
        // (Before the fix the keep-alive write, inline in the audio path, stalled it until the end.)
        const locked = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const holder = yield* Effect.forkChild(sql.withTransaction(Effect.gen(function*() {
          yield* sql.unsafe("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
          yield* Deferred.succeed(locked, undefined)
          yield* Deferred.await(release)
        })))
        yield* Deferred.await(locked)
        const from = Date.now()
        yield* sleep(4000)
        const to = Date.now()
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)
        yield* Fiber.join(sending)
        // Chunks kept arriving at the gateway all through the stall: no silence of a second or more.
        const arrivals = [from, ...fakeAsr.chunks(id).map((c) => c.receivedAtMs).filter((t) => t > from && t < to), to]
        const longestSilence = Math.max(...arrivals.slice(1).map((t, i) => t - arrivals[i]!))
        assert.isBelow(longestSilence, 1000, `longest silence at the gateway during the stall: ${longestSilence} ms`)
        // Nothing was lost: every chunk arrived, in order.
        yield* eventually(Effect.sync(() => fakeAsr.chunks(id).length === 3 * pcmChunks.length), "every chunk at the gateway")
        assert.deepStrictEqual(fakeAsr.chunks(id).map((c) => c.sequence), Array.from({ length: 3 * pcmChunks.length }, (_, n) => n))
      }))
  })

  layer(mediaServer({ SESSION_CACHE_TTL_MS: "0" }), { timeout: 60_000 })("a produce whose activation fails (database fault)", (it) => {
    it.effect("answers an error and closes the producer it made; the session stays pending with no producer", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient
        // A fault in this test's own database: every write that activates a session fails.
        yield* sql.unsafe(`CREATE FUNCTION refuse_activation() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN IF NEW.state = 'active' THEN RAISE EXCEPTION 'injected fault: write failed'; END IF; RETURN NEW; END $$`)
        yield* sql.unsafe("CREATE TRIGGER refuse_activation BEFORE UPDATE ON sessions FOR EACH ROW EXECUTE FUNCTION refuse_activation()")
        const alice = yield* signIn(user("alice"))
        const id = yield* startSession(alice.headers)
        const plain = yield* request("POST", `/api/webrtc/${id}/plain-transports`, { comedia: true }, alice.headers)
        assert.strictEqual(plain.status, 201, plain.text)
        const produce = () =>
          request(
            "POST",
            `/api/webrtc/${id}/plain-transports/${str(plain.json["id"])}/produce`,
            { kind: "audio", rtpParameters: opusRtpParameters() },
            alice.headers
          )
        const failed = yield* produce()
        assert.strictEqual(failed.status, 500, failed.text)
        const media = yield* MediaServer
        const ofSession = Effect.map(media.status, (s) => s.sessions.find((m) => m.id === id))
        assert.deepInclude(yield* ofSession, { producers: 0, consumers: 0 })
        assert.strictEqual((yield* request("GET", `/api/session/${id}`, undefined, alice.headers)).json["state"], "pending")
        // The fault gone, the same request succeeds.
        yield* sql.unsafe("DROP TRIGGER refuse_activation ON sessions")
        const ok = yield* produce()
        assert.strictEqual(ok.status, 201, ok.text)
        assert.deepInclude(yield* ofSession, { producers: 1 })
        assert.strictEqual((yield* request("GET", `/api/session/${id}`, undefined, alice.headers)).json["state"], "active")
      }))
  })

  // One device opens 16 sessions at a time: the per-client session caps are not what this measures.
  layer(mediaServer({ LOG_LEVEL: "warn", ...NO_SESSION_CAPS }), { timeout: 240_000 })("stops racing produce (recording sink)", (it) => {
    it.effect("200 sessions, each stopped while its producer's pipeline starts: every sink stream and consumer is closed", () =>
      Effect.gen(function*() {
        const sessions = 200
        const alice = yield* signIn(user("alice"))
        const run = (n: number) =>
          Effect.gen(function*() {
            const id = yield* startSession(alice.headers)
            const plain = yield* request("POST", `/api/webrtc/${id}/plain-transports`, { comedia: true }, alice.headers)
            assert.strictEqual(plain.status, 201, plain.text)
            const transportId = str(plain.json["id"])
            const produce = request(
              "POST",
              `/api/webrtc/${id}/plain-transports/${transportId}/produce`,
              { kind: "audio", rtpParameters: opusRtpParameters() },
              alice.headers
            )
            // The stop lands at varying points of the produce and of the pipeline start it forks.
            const [produced] = yield* Effect.all([produce, Effect.andThen(sleep(n % 7), stopWhenActive(id, alice.headers))], { concurrency: 2 })
            assert.strictEqual(produced.status, 201, produced.text)
            return id
          })
        const ids: ReadonlyArray<string> = yield* Effect.forEach(Array.from({ length: sessions }, (_, n) => n), run, { concurrency: 16 })
        assert.strictEqual(new Set(ids).size, sessions)
        const media = yield* MediaServer
        yield* eventually(Effect.map(asrStatus, (s) => s["streams"] === 0), "every recording closed", 20_000).pipe(
          Effect.catchDefect(() => Effect.flatMap(asrStatus, (s) => Effect.die(`recordings still open: ${JSON.stringify(s)}`)))
        )
        // The race was real: pipelines did open recordings before their sessions ended.
        assert.isAbove(Number((yield* asrStatus)["recordingsFinished"]), sessions / 4)
        const status = yield* media.status
        assert.deepStrictEqual(status.sessions.filter((s) => ids.includes(s.id)), [])
      }), 240_000)
  })
})
