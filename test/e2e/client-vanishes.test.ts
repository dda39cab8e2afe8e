import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type BrowserServer, chromium } from "playwright-core"
import { DemoRoutes } from "../../src/adapters/http/demo.ts"
import { ApiRoutes } from "../../src/adapters/http/routes.ts"
import { serveHttp } from "../../src/layers/HttpServer.ts"
import { MediaServer } from "../../src/layers/MediaServer.ts"
import { Sessions } from "../../src/layers/SessionStore.ts"
import { JWT_SECRET, PROVISIONING_KEY } from "../support/auth.ts"
import { chromiumOptions } from "../support/chromium.ts"
import { baseUrl } from "../support/http.ts"
import { eventually, user } from "../support/media.ts"
import { onFreshDatabase } from "../support/server.ts"
import { toneSequence, wavFile } from "../support/tones.ts"
import { SessionId } from "../../src/schemas/ids.ts"

/**
 * A browser that streams and then vanishes (its processes killed: no DTLS close, no STUN, no HTTP)
 * leaves nothing behind, and long before idle expiry: its consent checks stop, so ICE consent is
 * lost after MEDIASOUP_ICE_CONSENT_TIMEOUT_SECONDS; the transport is closed at once and, with no
 * client transport left MEDIA_CONSENT_GRACE_MS later, the session expires with reason
 * consent_lost; its router, transports and consumers are closed with it.
 */

const CONSENT_SECONDS = 10
const GRACE_MS = 2000
/** Far longer than the test: an idle expiry would fail it. */
const IDLE_SECONDS = 600
const work = mkdtempSync(join(tmpdir(), "auralink-vanish-"))
const wavPath = join(work, "tones.wav")
writeFileSync(wavPath, wavFile(toneSequence({ sampleRate: 48_000, tones: [440], toneMs: 30_000 }), 48_000))

const Server = onFreshDatabase(serveHttp(Layer.mergeAll(ApiRoutes, DemoRoutes), 0, "127.0.0.1"), {
  JWT_SECRET,
  AUTH_PROVISIONING_KEY: PROVISIONING_KEY,
  MEDIASOUP_LISTEN_IP: "127.0.0.1",
  MEDIASOUP_WORKERS: "1",
  RTC_MIN_PORT: "41700",
  RTC_MAX_PORT: "41799",
  DATA_DIR: join(work, "data"),
  SESSION_SWEEP_INTERVAL_MS: "500",
  MEDIASOUP_ICE_CONSENT_TIMEOUT_SECONDS: String(CONSENT_SECONDS),
  MEDIA_CONSENT_GRACE_MS: String(GRACE_MS)
})

/** Chromium as a server process of its own, so the test can kill it outright. */
const launch = Effect.acquireRelease(
  Effect.promise(() => chromium.launchServer(chromiumOptions(wavPath))),
  (server) => Effect.promise(() => server.close().catch(() => undefined))
)
const killAll = (server: BrowserServer) => {
  const pid = server.process().pid
  if (pid === undefined) throw new Error("no browser process")
  process.kill(-pid, "SIGKILL") // the whole process group: browser, renderer, network service
}

describe("a client that vanishes mid-stream", () => {
  // Live clock: the sweeper sleeps between runs.
  layer(Server, { timeout: 90_000, excludeTestServices: true })("ICE consent", (it) => {
    for (const path of ["webrtc", "pcm"] as const) {
      it.effect(
        `${path}: the session ends (consent_lost) within the consent timeout + grace after the client vanishes, and its media is closed`,
        () =>
          Effect.gen(function*() {
            const base = yield* baseUrl
            const server = yield* launch
            const browser = yield* Effect.promise(() => chromium.connect(server.wsEndpoint()))
            const page = yield* Effect.promise(() => browser.newContext().then((c) => c.newPage()))
            yield* Effect.promise(() => page.goto(`${base}/demo`))
            const sessionId = yield* Effect.promise(() =>
              page.evaluate(
                ([p, key, userId, idle]) => window.demo.start(p, { provisioningKey: key, userId, idleTimeoutSeconds: idle }),
                [
                  path,
                  PROVISIONING_KEY,
                  user("vanishing"),
                  IDLE_SECONDS
                ] as const
              )
            )
            const media = yield* MediaServer
            const sessions = yield* Sessions
            const stateOf = Effect.map(sessions.findFresh(SessionId.make(sessionId)), Option.map((s) => s.state))
            const ownsMedia = Effect.map(media.status, (s) => s.sessions.some((m) => m.id === sessionId && m.producers > 0))
            yield* eventually(ownsMedia, "the session's producer")
            // Streaming for longer than the consent timeout: the browser's consent checks keep it alive.
            yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, (CONSENT_SECONDS + 2) * 1000))) // real time, not the TestClock
            assert.deepStrictEqual(yield* stateOf, Option.some("active"))

            killAll(server)
            const killedAt = Date.now()
            yield* eventually(Effect.map(stateOf, (s) => Option.getOrUndefined(s) === "expired"), "consent loss", 40_000)
            const after = (Date.now() - killedAt) / 1000
            console.log(`client-vanishes ${path}: session expired ${after.toFixed(1)} s after the kill`)
            // The last consent check came up to ~6 s (RFC 7675: 4-6 s apart) before the kill; mediasoup
            // checks consent once a second.
            assert.isAtLeast(after, CONSENT_SECONDS - 6 + GRACE_MS / 1000 - 0.5)
            assert.isAtMost(after, CONSENT_SECONDS + GRACE_MS / 1000 + 2)
            const events = yield* Effect.orDie(sessions.events(SessionId.make(sessionId)))
            assert.deepInclude(events.map((e) => ({ to: e.to, actor: e.actor, reason: e.reason })), { to: "expired", actor: "media", reason: "consent_lost" })
            yield* eventually(Effect.map(media.status, (s) => !s.sessions.some((m) => m.id === sessionId)), "the session's media closed")
            for (const worker of yield* media.workers) {
              const dump = yield* Effect.promise(() => worker.dump())
              assert.deepStrictEqual(dump.routerIds, [], "routers left on the worker")
            }
          }).pipe(Effect.scoped),
        90_000
      )
    }
  })
})

process.on("exit", () => rmSync(work, { recursive: true, force: true }))
