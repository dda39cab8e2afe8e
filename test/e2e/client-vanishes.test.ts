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
 * A browser that streams and then vanishes (its processes killed: no DTLS close, no ICE, no HTTP)
 * leaves nothing behind: mediasoup 3.8 has no ICE consent timeout for UDP, so the session ends by
 * idle expiry (audio keeps it alive while it flows; once it stops, `idleTimeoutSeconds` later the
 * sweeper expires it), and its router, transports and consumers are closed with it.
 */

const IDLE_SECONDS = 10
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
  SESSION_SWEEP_INTERVAL_MS: "500"
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
  layer(Server, { timeout: 90_000, excludeTestServices: true })("idle expiry", (it) => {
    for (const path of ["webrtc", "pcm"] as const) {
      it.effect(`${path}: the session expires ${IDLE_SECONDS} s after its audio stops and its media is closed`, () =>
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
          // Streaming for longer than the idle timeout: flowing audio keeps the session alive.
          yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, (IDLE_SECONDS + 2) * 1000))) // real time, not the TestClock
          assert.deepStrictEqual(yield* stateOf, Option.some("active"))

          killAll(server)
          const killedAt = Date.now()
          yield* eventually(Effect.map(stateOf, (s) => Option.getOrUndefined(s) === "expired"), "idle expiry", 40_000)
          const after = (Date.now() - killedAt) / 1000
          // Audio refreshed the idle clock every quarter timeout, so expiry lands 3/4 to 1 timeout after
          // the last packet (plus a sweep interval).
          assert.isAtLeast(after, IDLE_SECONDS * 0.75 - 0.5)
          assert.isAtMost(after, IDLE_SECONDS + 3)
          yield* eventually(Effect.map(media.status, (s) => !s.sessions.some((m) => m.id === sessionId)), "the session's media closed")
          for (const worker of yield* media.workers) {
            const dump = yield* Effect.promise(() => worker.dump())
            assert.deepStrictEqual(dump.routerIds, [], "routers left on the worker")
          }
        }).pipe(Effect.scoped), 90_000)
    }
  })
})

process.on("exit", () => rmSync(work, { recursive: true, force: true }))
