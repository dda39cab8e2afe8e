import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Page, Request } from "playwright-core"
import { DemoRoutes } from "../../src/adapters/http/demo.ts"
import { ApiRoutes } from "../../src/adapters/http/routes.ts"
import { serveHttp } from "../../src/layers/HttpServer.ts"
import { Metrics } from "../../src/layers/Metrics.ts"
import { JWT_SECRET, PROVISIONING_KEY, request, signIn } from "../support/auth.ts"
import { demoPage, scopedChromium } from "../support/chromium.ts"
import { baseUrl, capturedLogs } from "../support/http.ts"
import { eventually, sessionRecordings, user } from "../support/media.ts"
import { finalizedWav } from "../support/recording.ts"
import { onFreshDatabase } from "../support/server.ts"
import { checkToneSequence, concatSamples, type ToneCheck, toneSequence, wavFile } from "../support/tones.ts"

/**
 * The demo's WHIP mode end to end: headless Chromium (Debian's) plays a WAV of pure tones as its
 * fake microphone; the page publishes it with the browser's own RTCPeerConnection (POST /whip at
 * once, candidates trickled by PATCH), restarts ICE by PATCH mid-sequence, plays the session back
 * by WHEP with a share token, and stops with DELETE. The server (in process, fresh Postgres, WAV
 * recording sink) is asked what happened: its request metrics count the PATCHes, the session's
 * state and producer packets are read over its API, and the recording must hold every tone, in
 * order, each as long as it was played (no gap, also across the ICE restart).
 */

const WAV_RATE = 48_000
const TONES = [440, 660, 880, 550, 330, 770, 520, 990]
const TONE_MS = 500
/** Silence first, long enough for the page to connect before the first tone (a tone cut by the start is no gap). */
const LEAD_MS = 1500
const TAIL_MS = 600
const TOTAL_MS = LEAD_MS + TONES.length * TONE_MS + TAIL_MS
/** When the page restarts ICE (after it connected, counted from then): in the first tones, so most of the sequence is sent after it. */
const RESTART_AT_MS = LEAD_MS + TONE_MS

const work = mkdtempSync(join(tmpdir(), "auralink-browser-whip-"))
const wavPath = join(work, "tones.wav")
const dataDir = join(work, "data")
const silence = (ms: number) => new Int16Array(Math.round((ms * WAV_RATE) / 1000))
writeFileSync(
  wavPath,
  wavFile(concatSamples([silence(LEAD_MS), toneSequence({ sampleRate: WAV_RATE, tones: TONES, toneMs: TONE_MS }), silence(TAIL_MS)]), WAV_RATE)
)

const logs = capturedLogs()
const Server = onFreshDatabase(serveHttp(Layer.mergeAll(ApiRoutes, DemoRoutes), 0, "127.0.0.1"), {
  JWT_SECRET,
  AUTH_PROVISIONING_KEY: PROVISIONING_KEY,
  DATA_DIR: dataDir,
  MEDIASOUP_WORKERS: "1",
  RTC_MIN_PORT: "41850",
  RTC_MAX_PORT: "41899",
  SESSION_SWEEP_INTERVAL_MS: "3600000",
  RATE_LIMIT_AUTH_PER_MINUTE: "100000",
  RATE_LIMIT_SESSION_PER_MINUTE: "100000",
  RATE_LIMIT_DEFAULT_PER_MINUTE: "100000"
}).pipe(Layer.provide(logs.layer))
const chromium = scopedChromium(wavPath)

const STRICT_CSP = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
const WHIP_RESOURCE = "/whip/sessions/:sessionId/:resourceId"

const sleepUntil = (at: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now()))))

/** The server's own count of requests by method, route template and status (its request-duration histogram). */
const served = (method: string, route: string, status: number) =>
  Effect.gen(function*() {
    const { httpRequestDuration } = yield* Metrics
    const { values } = yield* Effect.promise(() => httpRequestDuration.get())
    const count = values.find((v) =>
      v.metricName === "http_request_duration_seconds_count" && v.labels["method"] === method && v.labels["route"] === route &&
      v.labels["status"] === String(status)
    )
    return count?.value ?? 0
  })

/** A WHIP/WHEP request the page made and what the server answered. */
interface Exchange {
  readonly method: string
  readonly path: string
  readonly body: string
  readonly authorization: string
  status?: number
  etag?: string | null
}

/** Records the page's WHIP and WHEP requests with their answers. */
const recordExchanges = (page: Page) => {
  const exchanges: Array<Exchange> = []
  const byRequest = new Map<Request, Exchange>()
  page.on("request", (r) => {
    const path = new URL(r.url()).pathname
    if (!/^\/(whip|whep)\b/.test(path)) return
    const exchange: Exchange = { method: r.method(), path, body: r.postData() ?? "", authorization: r.headers()["authorization"] ?? "" }
    exchanges.push(exchange)
    byRequest.set(r, exchange)
  })
  page.on("response", (r) => {
    const exchange = byRequest.get(r.request())
    if (exchange === undefined) return
    exchange.status = r.status()
    exchange.etag = r.headers()["etag"] ?? null
  })
  return exchanges
}

/** Each tone's run in the recording: when its windows start and end (ms). */
const toneRuns = (check: ToneCheck) => {
  const runs: Array<{ tone: number; startMs: number; endMs: number }> = []
  for (const r of check.track) {
    const tone = r.rms < 0.01 ? undefined : TONES.find((t) => Math.abs(r.frequency - t) <= t * 0.02)
    const last = runs[runs.length - 1]
    if (tone !== undefined && last?.tone === tone && r.startMs - last.endMs <= 60) last.endMs = r.startMs
    else if (tone !== undefined) runs.push({ tone, startMs: r.startMs, endMs: r.startMs })
  }
  return runs.filter((r) => r.endMs - r.startMs >= 100)
}

/** The tones a listener heard, in order (two readings in a row within 3 % make one). */
const heardTones = (heard: ReadonlyArray<{ readonly hz: number }>) => {
  const out: Array<number> = []
  let previous: number | undefined
  for (const { hz } of heard) {
    const tone = TONES.find((t) => Math.abs(hz - t) <= t * 0.03)
    if (tone !== undefined && tone === previous && out[out.length - 1] !== tone) out.push(tone)
    previous = tone
  }
  return out
}

const wavMs = (file: string | undefined) => file === undefined ? 0 : Math.max(0, (statSync(file).size - 44) / 32)

describe("browser demo, WHIP mode (headless Chromium)", () => {
  layer(Layer.mergeAll(Server, chromium.layer), { timeout: 120_000 })("to the WAV recording", (it) => {
    it.effect("publishes by WHIP with trickle and an ICE restart, plays back by WHEP with a share token, stops by DELETE", () =>
      Effect.gen(function*() {
        const base = yield* baseUrl
        const browser = chromium.current()
        if (browser === undefined) return yield* Effect.die("browser not launched")
        const userId = user("demo-whip")
        const { page, exchanges, log } = yield* Effect.acquireRelease(
          Effect.promise(async () => {
            const { context, log, page } = await demoPage(browser, STRICT_CSP)
            return { context, page, exchanges: recordExchanges(page), log }
          }),
          ({ context }) => Effect.promise(() => context.close())
        )
        const stats = () => Effect.promise(() => page.evaluate(() => window.demo.stats()))
        const waitFor = (what: string, check: () => boolean, ms = 10_000) =>
          Effect.promise(() =>
            page.waitForFunction(check, undefined, { timeout: ms, polling: 50 }).then(() => undefined, async (error: unknown) => {
              const now = await page.evaluate(() => window.demo.stats()).catch(() => undefined)
              const server = logs.lines.filter((l) => l["msg"] !== "http request").map((l) =>
                `${String(l["msg"])} ${typeof l["event"] === "string" ? l["event"] : ""}`
              )
              throw new Error(`${what}: ${String(error)}\n${JSON.stringify(now)}\npage:\n${log.join("\n")}\nserver:\n${server.join("\n")}`)
            })
          ).pipe(Effect.orDie)

        // Publish from the form: provisioning key, user id, "Start: WHIP".
        yield* Effect.promise(async () => {
          await page.goto(`${base}/demo`)
          await page.fill("#provisioning-key", PROVISIONING_KEY)
          await page.fill("#user-id", userId)
          await page.click("#start-whip")
        })
        yield* waitFor("the WHIP peer connection", () => window.demo.stats().whip?.connectionState === "connected")
        const readyAt = Date.now()
        const id = (yield* stats()).sessionId ?? ""
        const owner = yield* signIn(userId) // another device of the same user: the server's view of the session
        const session = () => Effect.map(request("GET", `/api/session/${id}`, undefined, owner.headers), (r) => r.json["state"])
        assert.strictEqual(yield* session(), "active")

        // Share, then listen back with the share token the form now holds.
        yield* Effect.promise(() => page.click("#share"))
        yield* waitFor("the share grant", () => window.demo.stats().share !== undefined)
        const grant = (yield* stats()).share
        assert.strictEqual(grant?.whepUrl, `/whep/sessions/${id}`)
        assert.strictEqual(yield* Effect.promise(() => page.inputValue("#listen-token")), grant?.token)
        yield* Effect.promise(() => page.click("#listen"))
        yield* waitFor("the WHEP player", () => window.demo.stats().listen?.connectionState === "connected")

        // ICE restart mid-sequence.
        yield* sleepUntil(readyAt + RESTART_AT_MS)
        const resource = exchanges.find((e) => e.method === "POST" && e.path === "/whip")
        const location = (yield* stats()).whip?.location ?? ""
        const rtpStats = `/api/webrtc/${id}/transports/${location.split("/").pop() ?? ""}/stats`
        const packets = () =>
          Effect.map(
            request("GET", rtpStats, undefined, owner.headers),
            (r) => JSON.stringify(r.json["producers"]).match(/"packetCount":(\d+)/)?.[1] ?? "0"
          ).pipe(Effect.map(Number))
        yield* Effect.promise(() => page.click("#restart-ice"))
        yield* waitFor("the ICE restart", () => window.demo.stats().whip?.restarts === 1)
        const restartedAt = Date.now()
        assert.isBelow(restartedAt - readyAt, LEAD_MS + (TONES.length - 3) * TONE_MS, "at least three tones are sent after the restart")
        yield* waitFor("connected after the restart", () => window.demo.stats().whip?.connectionState === "connected")
        const after = yield* stats()
        const restart = exchanges.find((e) => e.method === "PATCH" && e.status === 200)
        assert.isDefined(restart, "the restart PATCH")
        assert.match(restart?.body ?? "", /a=ice-ufrag:/)
        assert.notStrictEqual(restart?.etag, resource?.etag, "a new ETag after the restart")
        assert.strictEqual(after.whip?.etag, restart?.etag)
        // The server holds the new ETag: the old one is refused, the new one taken (an end-of-candidates of the current ufrag).
        const fragment = `a=ice-ufrag:${after.whip?.ufrag ?? ""}\r\na=ice-pwd:unused\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=end-of-candidates\r\n`
        const patch = (etag: string) =>
          Effect.map(
            Effect.promise(() =>
              fetch(`${base}${new URL(location).pathname}`, {
                method: "PATCH",
                headers: { ...owner.headers, "content-type": "application/trickle-ice-sdpfrag", "if-match": etag },
                body: fragment
              })
            ),
            (r) => r.status
          )
        assert.strictEqual(yield* patch(resource?.etag ?? ""), 412)
        assert.strictEqual(yield* patch(restart?.etag ?? ""), 204)
        assert.strictEqual(yield* session(), "active", "the session stays active across the ICE restart")
        const packetsAtRestart = yield* packets()
        yield* eventually(Effect.map(packets(), (n) => n > packetsAtRestart + 25), "RTP at the server after the restart", 5000)

        // Let the WAV play out; the recording grows past the restart.
        const file = () => sessionRecordings(dataDir, id)[0]
        const recordedAtRestart = wavMs(file())
        // The WAV started with getUserMedia, before the page connected: it has ended by then.
        yield* sleepUntil(readyAt + TOTAL_MS + 300)
        assert.isAbove(wavMs(file()), recordedAtRestart + 2 * TONE_MS, "the recording grows after the restart")
        const listened = (yield* stats()).listen
        const heard = heardTones(listened?.heard ?? [])
        const heardAfterRestart = heardTones((listened?.heard ?? []).filter((h) => h.at > restartedAt))

        // Stop: the player's DELETE, then the publisher's; the session is completed.
        const stopAt = Date.now()
        yield* Effect.promise(() => page.click("#stop"))
        yield* waitFor("the session completed", () => window.demo.stats().state === "completed" && window.demo.stats().whip === undefined)
        assert.strictEqual(yield* session(), "completed")
        const final = yield* stats()
        assert.deepStrictEqual(final.errors, [], `errors on the page\n${log.join("\n")}`)

        // (a) Candidates came by PATCH: the page's requests and the server's count agree.
        const trickles = exchanges.filter((e) => e.method === "PATCH" && e.path.startsWith("/whip/") && e.status === 204)
        const candidates = trickles.flatMap((e) => e.body.split("\r\n").filter((l) => l.startsWith("a=candidate:")))
        assert.isAtLeast(candidates.length, 1, "trickled candidates")
        assert.isTrue(trickles.some((e) => e.body.includes("a=end-of-candidates")), "end-of-candidates trickled")
        assert.strictEqual(yield* served("PATCH", WHIP_RESOURCE, 204), trickles.length + 1, "trickle PATCHes at the server (+1 of the test's)")
        assert.strictEqual(yield* served("PATCH", WHIP_RESOURCE, 200), 1, "ICE restarts at the server")
        assert.strictEqual(yield* served("PATCH", WHIP_RESOURCE, 412), 1)
        assert.strictEqual(yield* served("DELETE", WHIP_RESOURCE, 200), 1)
        assert.strictEqual(yield* served("POST", "/whep/sessions/:sessionId", 201), 1)
        // The server's log: one ICE restart, and its client never looked gone (no ICE consent loss, DTLS end or media timeout).
        const events = logs.lines.filter((l) => l["sessionId"] === id).map((l) => String(l["event"]))
        assert.strictEqual(events.filter((e) => e === "whip_ice_restart").length, 1)
        for (const gone of ["ice_consent_lost", "dtls_failed", "dtls_closed", "whip_media_timeout"]) assert.notInclude(events, gone)
        assert.strictEqual(yield* served("DELETE", "/whep/sessions/:sessionId/:resourceId", 200), 1)
        const offered = (resource?.body ?? "").split("\r\n").filter((l) => l.startsWith("a=candidate:")).length

        // Listen-back: the share token opened it, RTP and audio arrived, and the tones were heard, also after the restart.
        const whep = exchanges.find((e) => e.method === "POST" && e.path.startsWith("/whep/"))
        assert.strictEqual(whep?.authorization, `Bearer ${grant?.token ?? "-"}`)
        assert.isAbove(listened?.packetsReceived ?? 0, 100)
        assert.isAbove(listened?.totalAudioEnergy ?? 0, 0)
        assert.isAtLeast(heard.length, 4, `tones heard: ${heard.join(",")}`)
        const first = TONES.indexOf(heard[0] ?? 0)
        assert.deepStrictEqual(heard, TONES.slice(first, first + heard.length), "heard in order")
        assert.isAtLeast(heardAfterRestart.length, 3, `tones heard after the restart: ${heardAfterRestart.join(",")}`)

        // (c) The recording: every tone in order, each as long as it was played, one after another.
        yield* eventually(Effect.sync(() => finalizedWav(file() ?? "none") !== undefined), `a finalized recording of ${id}`, 10_000)
        const samples = finalizedWav(file() ?? "none") ?? new Int16Array(0)
        const check = checkToneSequence(samples, 16_000, { tones: TONES })
        const runs = toneRuns(check)
        const describe = runs.map((r) => `${r.tone}@${Math.round(r.startMs)}+${Math.round(r.endMs - r.startMs)}`).join(" ")
        assert.isTrue(check.ok, `${check.reason ?? ""}: ${describe}`)
        assert.deepStrictEqual(runs.map((r) => r.tone), TONES, describe)
        assert.isAbove(runs[0]?.startMs ?? 0, 100, `the recording starts within the first tone: ${describe}`)
        for (const [i, r] of runs.entries()) {
          assert.isAtLeast(r.endMs - r.startMs, TONE_MS - 150, `tone ${r.tone} cut short: ${describe}`)
          const next = runs[i + 1]
          if (next !== undefined) assert.approximately(next.startMs - r.startMs, TONE_MS, 75, `a gap or overlap after ${r.tone}: ${describe}`)
        }
        // And about as long as the media flowed (no stretch lost): from connected to the DELETE.
        const ms = samples.length / 16
        assert.isAtLeast(ms, stopAt - readyAt - 500, "recording vs streaming time")
        console.log(
          `browser-whip offer_candidates=${offered} trickle_patches=${trickles.length} trickled_candidates=${candidates.length} ` +
            `restart_etag_changed=true recording_ms=${Math.round(ms)} streamed_ms=${stopAt - readyAt} heard=${heard.join(",")} ` +
            `heard_after_restart=${heardAfterRestart.join(",")} tones=${check.observed.join(",")}`
        )
      }))
  })
})

process.on("exit", () => rmSync(work, { recursive: true, force: true }))
