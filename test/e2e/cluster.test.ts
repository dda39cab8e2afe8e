import { Effect, Exit, Scope } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Browser } from "playwright-core"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { JWT_SECRET, PROVISIONING_KEY } from "../support/auth.ts"
import { findEvent, hasAiortc, runWhipPublish } from "../support/aiortc.ts"
import { launchChromium } from "../support/chromium.ts"
import { FakeAsrGateway } from "../support/fake-asr.ts"
import { type FrontProxy, startFrontProxy } from "../support/front-proxy.ts"
import { freshDatabase, queryRows } from "../support/postgres.ts"
import { type ServiceProcess, freePort, startService, waitForOk } from "../support/process.ts"
import { deleteKeys, REDIS_URL, runPrefix } from "../support/redis.ts"
import { asRecord, call, signedInClient } from "../support/service-client.ts"
import { concatSamples, toneSequence, wavFile } from "../support/tones.ts"

/**
 * Two service processes on the real Postgres and Redis, behind one address (test/support/front-proxy.ts,
 * standing in for a load balancer that sends new sessions to A and everything else to B): a
 * session made on A is signaled through B (307 to A's PUBLIC_URL) by Chromium running the demo
 * (mediasoup-client) and by aiortc over WHIP, and its audio reaches the ASR gateway; the cluster
 * listing shows both; A's capacity refuses its N+1st session with the hint to B; A killed with
 * SIGKILL has its sessions in `error` (instance lost) within INSTANCE_TTL_MS while B serves; B
 * drained by SIGTERM tells its client `going_away`, ends the session (shutdown) and exits 0.
 */

const TTL_MS = 3000
const DRAIN_MS = 2500
const SHUTDOWN_MS = 10_000
const CAPACITY_A = 2
const OPERATOR = { "x-provisioning-key": PROVISIONING_KEY }

const work = mkdtempSync(join(tmpdir(), "auralink-cluster-"))
const wavPath = join(work, "tones.wav")
writeFileSync(wavPath, wavFile(concatSamples([toneSequence({ sampleRate: 48_000 }), toneSequence({ sampleRate: 48_000 })]), 48_000))
const whipWav = join(work, "whip.wav")
writeFileSync(whipWav, wavFile(toneSequence({ sampleRate: 16_000 }), 16_000))

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const cleanup: Array<() => unknown> = []
const scope = Effect.runSync(Scope.make())
const asr = new FakeAsrGateway()
let a: ServiceProcess
let b: ServiceProcess
let front: FrontProxy
let databaseUrl = ""
const prefix = `${runPrefix()}:`

const listing = async (service: ServiceProcess) => {
  const reply = await call(`${service.httpUrl}/api/cluster`, { headers: OPERATOR })
  const instances = Array.isArray(reply.json["instances"]) ? reply.json["instances"].map(asRecord) : []
  return instances
}

const sessionRow = async (id: string) => (await queryRows(databaseUrl, `SELECT state, error, instance_id FROM sessions WHERE id = '${id}'`))[0] ?? {}

beforeAll(async () => {
  await asr.start(0)
  cleanup.push(() => asr.stop())
  databaseUrl = await Effect.runPromise(Scope.provide(freshDatabase, scope))
  cleanup.push(() => Effect.runPromise(Scope.close(scope, Exit.void)))
  cleanup.push(() => deleteKeys(`${prefix}*`))
  const [portA, portB] = [await freePort(), await freePort()]
  front = await startFrontProxy((request) => {
    const path = new URL(request.url ?? "/", "http://x").pathname
    const starts = request.method === "POST" && (path === "/api/session" || path === "/whip")
    return starts ? `http://127.0.0.1:${portA}` : `http://127.0.0.1:${portB}`
  })
  cleanup.push(() => front.close())
  const env = {
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    JWT_SECRET,
    AUTH_PROVISIONING_KEY: PROVISIONING_KEY,
    ASR_GATEWAY_URL: asr.url,
    INSTANCE_TTL_MS: String(TTL_MS),
    DRAIN_TIMEOUT_MS: String(DRAIN_MS),
    SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_MS),
    // The page is served through the front address; its requests redirected to an instance are cross-origin.
    CORS_ORIGINS: front.url,
    MEDIASOUP_WORKERS: "1",
    DEMO_ENABLED: "true"
  }
  a = await startService({
    ...env,
    PORT: String(portA),
    PUBLIC_URL: `http://127.0.0.1:${portA}`,
    INSTANCE_CAPACITY: String(CAPACITY_A),
    BRIDGE_ID: "bridge-a",
    DATA_DIR: join(work, "a")
  })
  cleanup.push(() => a.child.kill("SIGKILL"))
  b = await startService({ ...env, PORT: String(portB), PUBLIC_URL: `http://127.0.0.1:${portB}`, BRIDGE_ID: "bridge-b", DATA_DIR: join(work, "b") })
  cleanup.push(() => b.child.kill("SIGKILL"))
  await Promise.all([waitForOk(`${a.httpUrl}/ready`, 40_000), waitForOk(`${b.httpUrl}/ready`, 40_000)])
}, 90_000)

afterAll(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
}, 30_000)

describe("two instances behind one address", () => {
  it("each lists both instances, alive, with their PUBLIC_URLs", async () => {
    for (const service of [a, b]) {
      const instances = await listing(service)
      expect(instances.filter((i) => i["state"] === "alive").map((i) => i["publicUrl"]).sort()).toEqual([a.httpUrl, b.httpUrl].sort())
    }
  })

  it(`admission: A (capacity ${CAPACITY_A}) refuses the next session with 503, Retry-After and B as the hint`, async () => {
    const client = await signedInClient(a.httpUrl)
    const ids: Array<string> = []
    for (let i = 0; i < CAPACITY_A; i++) {
      const started = await call(`${a.httpUrl}/api/session`, { method: "POST", headers: client.headers, body: "{}" })
      expect(started.status).toBe(201)
      ids.push(String(started.json["id"]))
    }
    const refused = await call(`${a.httpUrl}/api/session`, { method: "POST", headers: client.headers, body: "{}" })
    expect(refused.status).toBe(503)
    expect(refused.headers.get("retry-after")).toBe("2")
    expect(refused.json["alternate"]).toBe(b.httpUrl)
    for (const id of ids) expect((await call(`${a.httpUrl}/api/session/${id}/stop`, { method: "POST", headers: client.headers, body: "{}" })).status).toBe(200)
  })

  it("Chromium (the demo, mediasoup-client) on the front address: session on A, signaling through B's 307, audio to the ASR gateway", async () => {
    const browser: Browser = await launchChromium(wavPath)
    try {
      // The page under the service's own CSP: its connect-src names the other instances (where a redirect may lead).
      const context = await browser.newContext()
      const page = await context.newPage()
      const log: Array<string> = []
      page.on("console", (message) => log.push(`${message.type()}: ${message.text()}`))
      await page.goto(`${front.url}/demo`)
      await page.waitForFunction(() => typeof window.demo?.start === "function")
      const sessionId = await page.evaluate(
        ([key, userId]) => window.demo.start("webrtc", { provisioningKey: key, userId }),
        [PROVISIONING_KEY, `cluster-${crypto.randomUUID()}`] as const
      ).catch((error: unknown) => {
        throw new Error(`demo.start failed: ${String(error)}\n${log.join("\n")}`)
      })
      for (let waited = 0; asr.chunks(sessionId).length < 50 && waited < 15_000; waited += 200) await sleep(200)
      expect(asr.chunks(sessionId).length, log.join("\n")).toBeGreaterThanOrEqual(50)
      const row = await sessionRow(sessionId)
      expect(row["state"]).toBe("active")
      expect(String(row["instance_id"])).toMatch(/^bridge-a\//)
      const redirects = await (await fetch(`${b.httpUrl}/metrics`)).text()
      expect(redirects).toMatch(/^auralink_cluster_redirects_total\{outcome="redirected"\} ([5-9]|\d\d+)/m)
      await page.evaluate(() => window.demo.stop())
      await context.close()
    } finally {
      await browser.close()
    }
  }, 60_000)

  it.skipIf(!hasAiortc())("aiortc over WHIP on the front address: POST lands on B, follows the 307 to A, publishes, DELETEs", async () => {
    const client = await signedInClient(a.httpUrl)
    const started = await call(`${a.httpUrl}/api/session`, { method: "POST", headers: client.headers, body: "{}" })
    const id = String(started.json["id"])
    const run = await runWhipPublish({
      url: `${front.url}/whip/sessions/${id}`,
      token: client.token,
      wav: whipWav,
      seconds: 3,
      delete: true,
      timeoutMs: 40_000
    })
    expect(run.code, `${JSON.stringify(run.events)} ${run.stderr}`).toBe(0)
    expect(String(findEvent(run, "redirected")?.["to"])).toContain(`${a.httpUrl}/whip/sessions/${id}?auralink_redirect=`)
    expect(asr.chunks(id).length).toBeGreaterThanOrEqual(50)
  }, 60_000)

  it("A killed with SIGKILL: its sessions are `error` (instance lost) within INSTANCE_TTL_MS; B keeps serving", async () => {
    const client = await signedInClient(a.httpUrl)
    const started = await call(`${a.httpUrl}/api/session`, { method: "POST", headers: client.headers, body: "{}" })
    const id = String(started.json["id"])
    a.child.kill("SIGKILL")
    const killedAt = Date.now()
    await a.exited
    let row: Record<string, unknown> = {}
    while (Date.now() - killedAt < TTL_MS * 2) {
      row = await sessionRow(id)
      if (row["state"] === "error") break
      await sleep(100)
    }
    const tookMs = Date.now() - killedAt
    console.log(`cluster: A's session in error ${tookMs} ms after SIGKILL (INSTANCE_TTL_MS ${TTL_MS})`)
    expect(row).toMatchObject({ state: "error", error: "instance lost" })
    expect(tookMs).toBeLessThan(TTL_MS)
    expect((await fetch(`${b.httpUrl}/ready`)).status).toBe(200)
    const onB = await call(`${b.httpUrl}/api/session`, { method: "POST", headers: client.headers, body: "{}" })
    expect(onB.status).toBe(201)
    // Requests for the lost session: none is redirected to the dead instance.
    const signaling = await call(`${b.httpUrl}/api/webrtc/${id}/rtp-capabilities`, { headers: client.headers })
    expect([404, 409, 503]).toContain(signaling.status)
    await sleep(300)
    expect((await listing(b)).map((i) => i["publicUrl"])).toEqual([b.httpUrl])
  }, 30_000)

  it("B drained by SIGTERM with a live session: its SSE client gets going_away, the session ends (shutdown), B exits 0 in time", async () => {
    const client = await signedInClient(b.httpUrl)
    const started = await call(`${b.httpUrl}/api/session`, { method: "POST", headers: client.headers, body: "{}" })
    const id = String(started.json["id"])
    const events = await fetch(`${b.httpUrl}/api/webrtc/${id}/events?access_token=${client.token}`)
    expect(events.status).toBe(200)
    let text = ""
    const reading = (async () => {
      const decoder = new TextDecoder()
      for await (const chunk of events.body ?? []) text += decoder.decode(chunk, { stream: true })
    })().catch(() => undefined)
    await sleep(300)
    const signaledAt = Date.now()
    b.child.kill("SIGTERM")
    for (let waited = 0; !text.includes("going_away") && waited < 2000; waited += 50) await sleep(50)
    expect(text).toContain("event: going_away")
    // Media goes on during the drain: the session is still open right after the signal.
    expect((await sessionRow(id))["state"]).toBe("pending")
    const { code } = await b.exited
    const exitMs = Date.now() - signaledAt
    console.log(`cluster: B exited ${exitMs} ms after SIGTERM (DRAIN_TIMEOUT_MS ${DRAIN_MS}, SHUTDOWN_TIMEOUT_MS ${SHUTDOWN_MS})`)
    await reading
    expect(code).toBe(0)
    expect(exitMs).toBeGreaterThanOrEqual(DRAIN_MS - 200)
    expect(exitMs).toBeLessThan(SHUTDOWN_MS)
    expect(await sessionRow(id)).toMatchObject({ state: "error", error: "shutdown" })
    expect(text).toMatch(/event: state\ndata: .*"error"/)
  }, 30_000)
})
