import { assert, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Page } from "playwright-core"
import { DemoRoutes } from "../../src/adapters/http/demo.ts"
import { ApiRoutes } from "../../src/adapters/http/routes.ts"
import { serveHttp } from "../../src/layers/HttpServer.ts"
import { JWT_SECRET, PROVISIONING_KEY } from "../support/auth.ts"
import { scopedChromium } from "../support/chromium.ts"
import { baseUrl } from "../support/http.ts"
import { user } from "../support/media.ts"
import { onFreshDatabase } from "../support/server.ts"
import { wavFile } from "../support/tones.ts"

/**
 * Browser-facing hygiene in a real browser (Debian's headless Chromium): a web app on another
 * origin (a second HTTP server on loopback, listed in CORS_ORIGINS) registers a device, takes a
 * token and starts a session through CORS preflights and reads the exposed headers; an origin not
 * listed is refused by the browser; /docs (Scalar) and /demo render under their CSP with no violation.
 */

const work = mkdtempSync(join(tmpdir(), "auralink-browser-headers-"))
const wavPath = join(work, "silence.wav")
writeFileSync(wavPath, wavFile(new Int16Array(4800), 48_000))

let webAppOrigin = ""

/** The "web app": a blank page on its own origin, alive for the layer's scope. */
const WebApp = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<ReturnType<typeof createServer>>((resolve) => {
      const server = createServer((_, res) => res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>web app</title>"))
      server.listen(0, "127.0.0.1", () => resolve(server))
    })
  ),
  (server) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
)

const chromium = scopedChromium(wavPath)
const Chromium = chromium.layer

const Server = Layer.unwrap(Effect.gen(function*() {
  const web = yield* WebApp
  const address = web.address()
  if (address === null || typeof address === "string") return yield* Effect.die("the web app has no TCP address")
  webAppOrigin = `http://127.0.0.1:${address.port}`
  return onFreshDatabase(serveHttp(Layer.mergeAll(ApiRoutes, DemoRoutes), 0, "127.0.0.1"), {
    JWT_SECRET,
    AUTH_PROVISIONING_KEY: PROVISIONING_KEY,
    CORS_ORIGINS: webAppOrigin,
    MEDIASOUP_LISTEN_IP: "127.0.0.1",
    MEDIASOUP_WORKERS: "1",
    RTC_MIN_PORT: "44300",
    RTC_MAX_PORT: "44349",
    SESSION_SWEEP_INTERVAL_MS: "3600000",
    RATE_LIMIT_AUTH_PER_MINUTE: "100000",
    RATE_LIMIT_SESSION_PER_MINUTE: "100000",
    RATE_LIMIT_DEFAULT_PER_MINUTE: "100000"
  })
})).pipe(Layer.provideMerge(Chromium))

/** A fresh page that records CSP violations (from the first script on) and console errors. */
const openPage = Effect.acquireRelease(
  Effect.promise(async () => {
    const browser = chromium.current()
    if (browser === undefined) throw new Error("browser not launched")
    const context = await browser.newContext()
    const page = await context.newPage()
    const violations: Array<string> = []
    const errors: Array<string> = []
    await page.exposeFunction("reportViolation", (text: string) => violations.push(text))
    await page.addInitScript(() => {
      document.addEventListener("securitypolicyviolation", (e) => {
        const report: unknown = Reflect.get(window, "reportViolation")
        if (typeof report === "function") report(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}:${e.columnNumber} ${e.sample}`)
      })
    })
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(message.text())
    })
    page.on("pageerror", (error) => errors.push(`pageerror: ${error.message}`))
    return { context, page, violations, errors }
  }),
  ({ context }) => Effect.promise(() => context.close())
)

interface CrossOriginResult {
  readonly registered: number
  readonly session: number
  readonly state: string
  readonly requestId: string | null
  readonly rateLimitRemaining: string | null
  readonly problemStatus: number
  readonly problemType: string
}

/** What the web app on another origin gets from the API, all through the browser's CORS checks. */
const crossOriginCalls = (page: Page, api: string, userId: string) =>
  page.evaluate(async ([api, key, userId]): Promise<CrossOriginResult> => {
    const json = { "content-type": "application/json" }
    const registered = await fetch(`${api}/api/auth/devices`, {
      method: "POST",
      headers: { ...json, "x-provisioning-key": key },
      body: JSON.stringify({ userId })
    })
    const device: unknown = await registered.json()
    const token = await fetch(`${api}/api/auth/token`, { method: "POST", headers: json, body: JSON.stringify(device) })
    const tokens: unknown = await token.json()
    const accessToken = typeof tokens === "object" && tokens !== null ? String(Reflect.get(tokens, "accessToken")) : ""
    const session = await fetch(`${api}/api/session`, { method: "POST", headers: { ...json, authorization: `Bearer ${accessToken}` }, body: "{}" })
    const body: unknown = await session.json()
    const state = typeof body === "object" && body !== null ? String(Reflect.get(body, "state")) : ""
    const problem = await fetch(`${api}/api/session/not-a-session`, { headers: { authorization: `Bearer ${accessToken}` } })
    return {
      registered: registered.status,
      session: session.status,
      state,
      requestId: session.headers.get("x-request-id"),
      rateLimitRemaining: session.headers.get("ratelimit-remaining"),
      problemStatus: problem.status,
      problemType: problem.headers.get("content-type") ?? ""
    }
  }, [api, PROVISIONING_KEY, userId] as const)

layer(Server, { timeout: 120_000 })("browser-facing headers in Chromium", (it) => {
  it.effect("a web app on an origin in CORS_ORIGINS uses the API (preflights, Authorization, exposed headers)", () =>
    Effect.gen(function*() {
      const api = yield* baseUrl
      const { page, errors } = yield* openPage
      yield* Effect.promise(() => page.goto(`${webAppOrigin}/`))
      const result = yield* Effect.promise(() => crossOriginCalls(page, api, user("cors-web-app")))
      assert.deepInclude(
        result,
        { registered: 201, session: 201, state: "pending", problemStatus: 400, problemType: "application/problem+json" },
        errors.join("\n")
      )
      assert.match(result.requestId ?? "", /^[0-9a-f-]{36}$/, "X-Request-Id is exposed")
      assert.match(result.rateLimitRemaining ?? "", /^\d+$/, "RateLimit-Remaining is exposed")
    }))

  it.effect("an origin not in CORS_ORIGINS is refused by the browser", () =>
    Effect.gen(function*() {
      const api = yield* baseUrl
      const { page } = yield* openPage
      // The API's own listener reached by another host name is another origin, not listed.
      const other = api.replace("127.0.0.1", "localhost")
      yield* Effect.promise(() => page.goto(`${other}/demo`))
      const outcome = yield* Effect.promise(() =>
        page.evaluate(async (api) => {
          try {
            const res = await fetch(`${api}/api/session`, {
              method: "POST",
              headers: { "content-type": "application/json", authorization: "Bearer x" },
              body: "{}"
            })
            return `answered ${res.status}`
          } catch (error) {
            return `refused: ${String(error)}`
          }
        }, api)
      )
      assert.match(outcome, /^refused: TypeError/)
    }))

  it.effect("/docs (Scalar) renders under its CSP with nothing blocked", () =>
    Effect.gen(function*() {
      const api = yield* baseUrl
      const { page, violations, errors } = yield* openPage
      const response = yield* Effect.promise(() => page.goto(`${api}/docs`))
      assert.include(response?.headers()["content-security-policy"] ?? "", "script-src 'self' blob: 'sha256-")
      // The group descriptions appear only once Scalar has rendered the document.
      yield* Effect.promise(() =>
        page.waitForFunction(() => document.body.innerText.includes("Start, stop, read and list ingest sessions"), undefined, { timeout: 30_000 })
      )
      // Scalar's bundled Zod probes `new Function("")` once (in a try, falling back to no JIT): the only
      // report allowed is that eval probe; nothing blocked from anywhere (no fonts.scalar.com, no CDN).
      const blocked = violations.filter((v) => !v.startsWith("script-src eval "))
      assert.deepStrictEqual(blocked, [], `${violations.join("\n")}\n${errors.join("\n")}`)
      assert.isAtMost(violations.length, 1)
    }))

  it.effect("/demo loads its bundle and an AudioWorklet from blob: under its CSP with no violation", () =>
    Effect.gen(function*() {
      const api = yield* baseUrl
      const { page, violations, errors } = yield* openPage
      yield* Effect.promise(() => page.goto(`${api}/demo`))
      yield* Effect.promise(() => page.waitForFunction(() => "demo" in window, undefined, { timeout: 60_000 }))
      const worklet = yield* Effect.promise(() =>
        page.evaluate(async () => {
          const source = "registerProcessor('csp-probe', class extends AudioWorkletProcessor { process() { return true } })"
          const context = new AudioContext()
          await context.audioWorklet.addModule(URL.createObjectURL(new Blob([source], { type: "text/javascript" })))
          await context.close()
          return "loaded"
        })
      )
      assert.strictEqual(worklet, "loaded")
      assert.deepStrictEqual(violations, [], errors.join("\n"))
      assert.deepStrictEqual(errors, [])
    }))
})

process.on("exit", () => rmSync(work, { recursive: true, force: true }))
