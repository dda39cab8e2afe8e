import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { AppConfig } from "../../src/layers/Config.ts"
import { DemoRoutes } from "../../src/adapters/http/demo.ts"
import { ApiRoutes } from "../../src/adapters/http/routes.ts"
import { serveHttp } from "../../src/layers/HttpServer.ts"
import { JWT_SECRET, PROVISIONING_KEY } from "../support/auth.ts"
import { FakeAsrGateway } from "../support/fake-asr.ts"
import { baseUrl } from "../support/http.ts"
import { eventually, sessionRecordings, user } from "../support/media.ts"
import { finalizedWav } from "../support/recording.ts"
import { onFreshDatabase } from "../support/server.ts"
import { checkToneSequence, concatSamples, DEFAULT_TONE_MS, DEFAULT_TONES, type ToneCheck, toneSequence, wavFile } from "../support/tones.ts"
import { demoPage, scopedChromium } from "../support/chromium.ts"

/**
 * The browser demo end to end: headless Chromium (Debian's) plays a WAV of pure tones as its fake
 * microphone; the demo page streams it by each path (Opus over WebRTC, 16 kHz PCM chunks over a
 * data channel) to a real server on a fresh Postgres with the default media settings (listening on
 * 0.0.0.0, 127.0.0.1 announced); the audio that reaches the fake ASR gateway (a real gRPC server),
 * or the WAV recording when no gateway is configured, must follow the same tone sequence (each tone within 2 %, in order, nothing extra),
 * with no sequence gaps. Capture -> ASR receipt latency is printed as p50/p95.
 */

const WAV_RATE = 48_000
const LEAD_MS = 600
const TAIL_MS = 600
const TOTAL_MS = LEAD_MS + DEFAULT_TONES.length * DEFAULT_TONE_MS + TAIL_MS

const work = mkdtempSync(join(tmpdir(), "auralink-browser-audio-"))
const wavPath = join(work, "tones.wav")
const silence = (ms: number) => new Int16Array(Math.round((ms * WAV_RATE) / 1000))
writeFileSync(wavPath, wavFile(concatSamples([silence(LEAD_MS), toneSequence({ sampleRate: WAV_RATE }), silence(TAIL_MS)]), WAV_RATE))

/**
 * The default media settings (listen on 0.0.0.0, nothing announced: development announces 127.0.0.1),
 * so the browser proves a first run connects; the test support's loopback listen address is unset.
 */
const mediaEnv = (rtcPorts: [number, number], env: Record<string, string>) => ({
  JWT_SECRET,
  AUTH_PROVISIONING_KEY: PROVISIONING_KEY,
  MEDIASOUP_LISTEN_IP: undefined,
  MEDIASOUP_WORKERS: "1",
  RTC_MIN_PORT: String(rtcPorts[0]),
  RTC_MAX_PORT: String(rtcPorts[1]),
  SESSION_SWEEP_INTERVAL_MS: "3600000",
  RATE_LIMIT_AUTH_PER_MINUTE: "100000",
  RATE_LIMIT_SESSION_PER_MINUTE: "100000",
  RATE_LIMIT_DEFAULT_PER_MINUTE: "100000",
  ...env
})

/** The API and the demo on a fresh database, with mediasoup on loopback. */
const server = (rtcPorts: [number, number], env: Record<string, string>) =>
  onFreshDatabase(serveHttp(Layer.mergeAll(ApiRoutes, DemoRoutes), 0, "127.0.0.1"), mediaEnv(rtcPorts, env))

// ---- the browser ------------------------------------------------------------------------------

/** Chromium for the scope of a layer: fake microphone playing the tone WAV once, no gesture needed for audio. */
const chromium = scopedChromium(wavPath)
const Chromium = chromium.layer

type PathName = "webrtc" | "pcm"

const STRICT_CSP = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

const sleep = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

/** Opens the demo, starts `path` with a fresh device; returns the page and the session id. */
const openDemo = (path: PathName) =>
  Effect.gen(function*() {
    const base = yield* baseUrl
    const b = chromium.current()
    if (b === undefined) return yield* Effect.die("browser not launched")
    return yield* Effect.acquireRelease(
      Effect.promise(async () => {
        const { context, log, page } = await demoPage(b, STRICT_CSP)
        await page.goto(`${base}/demo`)
        await page.waitForFunction(() => typeof window.demo?.start === "function")
        const sessionId = await page.evaluate(
          ([p, key, userId]) => window.demo.start(p, { provisioningKey: key, userId, chunkMs: 40 }),
          [path, PROVISIONING_KEY, user(`demo-${path}`)] as const
        ).catch((error: unknown) => {
          throw new Error(`demo.start(${path}) failed: ${String(error)}\n${log.join("\n")}`)
        })
        return { context, page, sessionId, readyAt: Date.now(), log }
      }),
      ({ context }) => Effect.promise(() => context.close())
    )
  })

type Demo = Effect.Success<ReturnType<typeof openDemo>>

const stats = (demo: Demo) => Effect.promise(() => demo.page.evaluate(() => window.demo.stats()))
const stopDemo = (demo: Demo) => Effect.promise(() => demo.page.evaluate(() => window.demo.stop()))

/**
 * Lets the whole WAV play, plus the length of its leading silence and a bit for the pipeline. The
 * WAV starts when the page opens the microphone, which is before `demo.start` resolves, so the time
 * it resolved bounds the end of the WAV however long the set-up took (a slow set-up used to cut the
 * last tone off); the file is not looped (`%noloop`), so waiting longer only records silence.
 */
const untilPlayed = (demo: Demo) => sleep(Math.max(0, demo.readyAt + TOTAL_MS + LEAD_MS + 300 - Date.now()))

const describeCheck = (check: ToneCheck) =>
  `${check.reason ?? "ok"}; track: ${check.track.filter((r) => r.rms >= 0.01).map((r) => `${Math.round(r.startMs)}:${r.frequency.toFixed(0)}`).join(" ")}`

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!

// ---- with the fake ASR gateway ------------------------------------------------------------------

const fake = new FakeAsrGateway()
const FakeAsr = Layer.effectDiscard(Effect.acquireRelease(Effect.promise(() => fake.start(0)), () => Effect.sync(() => fake.stop())))
const WithAsr = Layer.unwrap(Effect.sync(() => server([41500, 41599], { ASR_GATEWAY_URL: fake.url }))).pipe(
  Layer.provideMerge(Layer.mergeAll(FakeAsr, Chromium))
)

const viaAsr = (path: PathName) =>
  Effect.gen(function*() {
    const demo = yield* openDemo(path)
    const id = demo.sessionId
    yield* untilPlayed(demo)
    // Everything captured has reached the gateway when the tone check passes on what it holds.
    const received = () => {
      const chunks = [...fake.chunks(id)].sort((a, b) => a.sequence - b.sequence)
      const unique = chunks.filter((c, i) => i === 0 || c.sequence !== chunks[i - 1]!.sequence)
      const samples = concatSamples(unique.map((c) => new Int16Array(c.pcm.buffer.slice(c.pcm.byteOffset, c.pcm.byteOffset + c.pcm.byteLength))))
      return { unique, samples }
    }
    yield* eventually(Effect.sync(() => checkToneSequence(received().samples, 16_000).ok), `the tone sequence at the fake ASR (${path})`, 15_000)
      .pipe(Effect.catchDefect((defect) => {
        const { samples } = received()
        return Effect.die(`${String(defect)}: ${describeCheck(checkToneSequence(samples, 16_000))}\n${demo.log.join("\n")}`)
      }))
    // The gateway's transcripts reach the page while the session runs: server-sent events and the events data channel.
    yield* eventually(
      Effect.promise(() => demo.page.evaluate(() => window.demo.stats().transcripts.length > 0 && window.demo.stats().channelTranscripts > 0)),
      `transcripts on the page (${path})`,
      5000
    )
    if (path === "pcm") {
      // Bad chunks are answered on the events channel (and go nowhere else): a 3-byte message, and a
      // well-sized chunk of version 2 whose sequence the answer names.
      const badVersion = [2, 0, 0, 0, 0xee, 0x6b, 0x28, 0x00, ...new Array<number>(8).fill(0), ...new Array<number>(640).fill(0)]
      yield* Effect.promise(() =>
        demo.page.evaluate((bad) => {
          window.demo.sendRaw([1, 2, 3])
          window.demo.sendRaw(bad)
        }, badVersion)
      )
      yield* eventually(Effect.promise(() => demo.page.evaluate(() => window.demo.stats().channelErrors.length >= 2)), "the error answers on the page", 5000)
      assert.deepStrictEqual((yield* stats(demo)).channelErrors, [{ reason: "too_short" }, { reason: "bad_version", sequence: 0xee6b2800 }])
      assert.isFalse(fake.chunks(id).some((c) => c.sequence === 0xee6b2800), "a rejected chunk reached the gateway")
    }
    const before = yield* stats(demo)
    yield* stopDemo(demo)
    const after = yield* stats(demo)
    if (path === "pcm") {
      // Every chunk the page sent arrives (none lost or rejected on the way), also those in flight at stop.
      yield* eventually(Effect.sync(() => received().unique.length >= after.chunksSent), "the last chunks at the gateway", 5000).pipe(Effect.ignore)
    }

    const { unique, samples } = received()
    const arrival = fake.chunks(id).map((c) => c.sequence)
    const check = checkToneSequence(samples, 16_000)
    assert.isTrue(check.ok, describeCheck(check))
    // In order and without gaps: arrival order is ascending, the distinct sequences contiguous.
    assert.isTrue(arrival.every((s, i) => i === 0 || s >= arrival[i - 1]!), `chunks out of order: ${arrival.join(",")}`)
    const first = unique[0]!.sequence
    const last = unique[unique.length - 1]!.sequence
    assert.strictEqual(last - first + 1, unique.length, `sequence gaps between ${first} and ${last}`)
    assert.deepStrictEqual(before.errors, [], "errors on the page")
    if (path === "pcm") {
      assert.strictEqual(unique.length, after.chunksSent, "chunks sent by the page vs received by the gateway")
      assert.strictEqual(first, 0)
    }

    const latencies = unique.map((c) => c.receivedAtMs - c.captureTimeMs).sort((a, b) => a - b)
    const p50 = percentile(latencies, 50)
    const p95 = percentile(latencies, 95)
    const transcripts = before.transcripts.length
    console.log(
      `browser-audio path=${path} sink=asr chunks=${unique.length} audio_ms=${Math.round(samples.length / 16)} ` +
        `capture_to_asr_p50_ms=${p50.toFixed(1)} capture_to_asr_p95_ms=${p95.toFixed(1)} transcripts_on_page=${transcripts} ` +
        `tones=${check.observed.join(",")}`
    )
    return { p50, p95 }
  })

describe("browser demo (headless Chromium)", () => {
  layer(WithAsr, { timeout: 120_000 })("to the fake ASR gateway", (it) => {
    it.effect("runs on the default media settings: listening on every interface, 127.0.0.1 announced", () =>
      Effect.gen(function*() {
        const { media } = yield* AppConfig
        assert.deepStrictEqual([media.listenIp, media.announcedIp, media.announcedIpDefaulted], ["0.0.0.0", Option.some("127.0.0.1"), true])
      }))

    it.effect("GET /demo serves the page and its bundled script (mediasoup-client inside)", () =>
      Effect.gen(function*() {
        const base = yield* baseUrl
        const page = yield* Effect.promise(() => fetch(`${base}/demo`))
        assert.strictEqual(page.status, 200)
        assert.include(page.headers.get("content-type") ?? "", "text/html")
        assert.include(yield* Effect.promise(() => page.text()), "/demo/app.js")
        const script = yield* Effect.promise(() => fetch(`${base}/demo/app.js`))
        assert.strictEqual(script.status, 200)
        assert.include(script.headers.get("content-type") ?? "", "javascript")
        assert.isAbove((yield* Effect.promise(() => script.text())).length, 100_000)
        for (const [path, type] of [["/demo/tap-worklet.js", "javascript"], ["/demo/demo.css", "text/css"]] as const) {
          const asset = yield* Effect.promise(() => fetch(`${base}${path}`))
          assert.strictEqual(asset.status, 200, path)
          assert.include(asset.headers.get("content-type") ?? "", type, path)
        }
        const openapi = yield* Effect.promise(() => fetch(`${base}/openapi.json`).then((r) => r.text()))
        assert.notInclude(openapi, "/demo")
      }))

    it.effect("PCM chunks over a data channel: the tones reach the gateway in order, no gaps", () => viaAsr("pcm").pipe(Effect.asVoid))

    it.effect("Opus over WebRTC from the microphone: the tones reach the gateway in order, no gaps", () => viaAsr("webrtc").pipe(Effect.asVoid))
  })

  // ---- with the recording sink (no ASR_GATEWAY_URL) ---------------------------------------------

  const dataDir = join(work, "data")
  const WithRecording = server([41600, 41699], { DATA_DIR: dataDir }).pipe(Layer.provideMerge(Chromium))

  const viaRecording = (path: PathName) =>
    Effect.gen(function*() {
      const demo = yield* openDemo(path)
      yield* untilPlayed(demo)
      yield* stopDemo(demo)
      const sent = yield* stats(demo)
      // The demo has one audio producer: one WAV file, named by its producer id.
      const file = () => sessionRecordings(dataDir, demo.sessionId)[0] ?? join(dataDir, "recordings", demo.sessionId, "none.wav")
      yield* eventually(Effect.sync(() => finalizedWav(file()) !== undefined), `a finalized recording of ${demo.sessionId}`, 10_000)
      assert.strictEqual(sessionRecordings(dataDir, demo.sessionId).length, 1)
      const samples = finalizedWav(file()) ?? new Int16Array(0)
      const check = checkToneSequence(samples, 16_000)
      assert.isTrue(check.ok, `${describeCheck(check)}\n${demo.log.join("\n")}`)
      // No gaps: the recording holds all the audio sent (PCM: exactly; Opus: about the streaming time).
      const ms = samples.length / 16
      if (path === "pcm") assert.strictEqual(ms, sent.audioMsSent)
      else assert.isAbove(ms, DEFAULT_TONES.length * DEFAULT_TONE_MS)
      console.log(`browser-audio path=${path} sink=recording audio_ms=${Math.round(ms)} tones=${check.observed.join(",")}`)
    })

  layer(WithRecording, { timeout: 120_000 })("to the WAV recording", (it) => {
    it.effect("PCM chunks over a data channel: the recording follows the tones", () => viaRecording("pcm"))
    it.effect("Opus over WebRTC: the recording follows the tones", () => viaRecording("webrtc"))
  })
})

process.on("exit", () => rmSync(work, { recursive: true, force: true }))
