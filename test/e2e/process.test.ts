import { mkdtempSync, writeFileSync } from "node:fs"
import { spawn } from "node:child_process"
import { Redis as IORedis } from "ioredis"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { PROVISIONING_KEY } from "../support/auth.ts"
import { freePort, type ServiceProcess, startService, waitForOk } from "../support/process.ts"
import { checkMetricsWithPromtool } from "../support/promtool.ts"

const running: Array<ServiceProcess> = []
afterEach(() => {
  for (const service of running.splice(0)) service.child.kill("SIGKILL")
})
const start = async (env: Record<string, string>) => {
  const service = await startService(env)
  running.push(service)
  return service
}
const dataDir = () => mkdtempSync(join(tmpdir(), "auralink-data-"))

const logLines = (text: string) => text.split("\n").filter((l) => l.startsWith("{")).map((l): Record<string, unknown> => JSON.parse(l))

/** A private real Redis on a free port, so the test can pause it without touching other tests. */
const privateRedis = async () => {
  const port = await freePort()
  const server = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" })
  // Commands queue until the server listens; the retry strategy reconnects every 100 ms until then.
  const client = new IORedis({ port, host: "127.0.0.1", retryStrategy: () => 100 })
  client.on("error", () => {})
  await client.ping()
  return { url: `redis://127.0.0.1:${port}`, client, stop: () => (client.disconnect(), server.kill("SIGKILL")) }
}

/** `/ready`'s dependencies (an object by name) as sorted `name:status` strings. */
const dependencyStates = async (url: string): Promise<Array<string>> => {
  const body: unknown = await (await fetch(`${url}/ready`)).json()
  const deps = typeof body === "object" && body !== null && "dependencies" in body && typeof body.dependencies === "object" && body.dependencies !== null
    ? Object.entries(body.dependencies)
    : []
  return deps.map(([name, d]) => `${name}:${typeof d === "object" && d !== null && "status" in d ? String(d.status) : "?"}`).sort()
}

/** The seed's dependencies nothing here configures: listed all the same. */
const UNCONFIGURED = ["ai_core:unconfigured", "communication_service:unconfigured", "dashboard:unconfigured", "webrtc_server:unconfigured"]

describe("the service process", () => {
  it("serves /health and /ready on embedded defaults within 15 s", async () => {
    const began = Date.now()
    const service = await start({ DATA_DIR: dataDir() })
    await waitForOk(`${service.httpUrl}/health`, 15_000)
    await waitForOk(`${service.httpUrl}/ready`, 15_000 - (Date.now() - began))
    expect(await dependencyStates(service.httpUrl)).toEqual([...UNCONFIGURED, "media_workers:up", "postgres:up", "redis:unconfigured", "state_store:up"].sort())
    const lines = logLines(service.output())
    expect(lines.some((l) => String(l["msg"]).startsWith("database backend: embedded PGlite"))).toBe(true)
    expect(lines.some((l) => l["msg"] === "state store backend: in-memory")).toBe(true)
  }, 30_000)

  it("answers every request during start-up (refused, 503 + Retry-After, then 200), none left hanging", async () => {
    const service = await start({ DATA_DIR: dataDir() })
    const seen: Array<string> = []
    const deadline = Date.now() + 25_000
    while (Date.now() < deadline) {
      // Polled every 5 ms: the listener binds before the app's handler is attached, and that window must not swallow requests.
      const answer = await fetch(`${service.httpUrl}/ready`, { signal: AbortSignal.timeout(2_000) }).then(
        (r) => `${r.status}${r.status === 503 ? ` retry-after=${r.headers.get("retry-after")}` : ""}`,
        (e: unknown) => e instanceof Error && e.name === "TimeoutError" ? "hung" : "refused"
      )
      if (seen.at(-1) !== answer) seen.push(answer)
      if (answer === "200") break
      await new Promise((r) => setTimeout(r, 5))
    }
    expect(seen).not.toContain("hung")
    expect(seen.at(-1)).toBe("200")
    for (const answer of seen.filter((a) => a.startsWith("503"))) expect(answer).toBe("503 retry-after=1")
  }, 30_000)

  it("uses the machine's Postgres and Redis when DATABASE_URL and REDIS_URL are set, and METRICS_PORT", async () => {
    const metricsPort = await freePort()
    const service = await start({
      METRICS_PORT: String(metricsPort),
      DATA_DIR: dataDir(),
      DATABASE_URL: "postgres://postgres@127.0.0.1:5432/test",
      REDIS_URL: "redis://127.0.0.1:6379",
      AUTH_PROVISIONING_KEY: PROVISIONING_KEY
    })
    await waitForOk(`${service.httpUrl}/ready`, 30_000)
    expect(await dependencyStates(service.httpUrl)).toEqual([...UNCONFIGURED, "media_workers:up", "postgres:up", "redis:up"].sort())
    const lines = logLines(service.output())
    expect(lines.some((l) => String(l["msg"]).startsWith("database backend: postgres"))).toBe(true)
    expect(lines.some((l) => String(l["msg"]).startsWith("state store backend: redis"))).toBe(true)
    const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
    expect(metrics.status).toBe(200)
    const text = await metrics.text()
    expect(text).toContain("http_request_duration_seconds")
    // The seed's infrastructure gauges: the Postgres pool, and the Redis connections (main, subscriber, ...) that are ready.
    expect(text).toMatch(/^auralink_db_connections_active \d+$/m)
    expect(text).toMatch(/^auralink_db_connections_idle [1-9]\d*$/m)
    expect(text).toMatch(/^auralink_redis_connections_active [1-9]\d*$/m)
    const verdict = checkMetricsWithPromtool(text)
    expect(verdict.status, verdict.output).toBe(0)
    const status: unknown = await (await fetch(`${service.httpUrl}/status`, { headers: { "x-provisioning-key": PROVISIONING_KEY } })).json()
    expect(status).toMatchObject({
      view: "full",
      database: { backend: "postgres", pool: { active: expect.any(Number), idle: expect.any(Number), total: expect.any(Number), waiting: null } },
      redis: { status: "ready", connections: { ready: expect.any(Number) } },
      auraid: expect.anything(),
      dashboard: expect.anything()
    })
  }, 30_000)

  it("stops on invalid config with one line naming the key, and exit code 1", async () => {
    const service = await start({ PORT: "8080", RTC_MIN_PORT: "not-a-port", DATA_DIR: dataDir() })
    const { code } = await service.exited
    expect(code).toBe(1)
    const text = service.output().trim()
    expect(text.split("\n")).toHaveLength(1)
    expect(text).toContain("RTC_MIN_PORT=\"not-a-port\": expected")
  }, 15_000)

  it("refuses ENABLE_SIP=true at start with one line naming the key, and exit code 1", async () => {
    const service = await start({ ENABLE_SIP: "true", DATA_DIR: dataDir() })
    expect((await service.exited).code).toBe(1)
    const text = service.output().trim()
    expect(text.split("\n")).toHaveLength(1)
    expect(text).toContain("ENABLE_SIP=\"true\": expected false: SIP ingress is not built yet")
  }, 15_000)

  it("goes on starting with unknown keys in its config file, one warning line naming each", async () => {
    const conf = join(dataDir(), "auralink.conf")
    writeFileSync(conf, "auralink { http { prot = 1 }, made_up = x }")
    const service = await start({ AURALINK_CONFIG: conf, DATA_DIR: dataDir() })
    // Logged before the layers are built: by the first layer's line (the state store backend) they are out.
    const deadline = Date.now() + 15_000
    while (!logLines(service.output()).some((l) => String(l["msg"]).startsWith("state store backend")) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    expect(service.child.exitCode).toBeNull()
    const warnings = logLines(service.output()).filter((l) => l["event"] === "config_warning")
    expect(warnings.map((l) => [l["level"], l["key"]])).toEqual([["warn", "auralink.http.prot"], ["warn", "auralink.made_up"]])
    expect(String(warnings[0]?.["msg"])).toBe("configuration file: unknown key auralink.http.prot (no setting reads it); ignored")
  }, 30_000)

  it("shuts down gracefully on SIGTERM: in-flight request completes, new requests refused, exit 0", async () => {
    const redis = await privateRedis()
    try {
      // A long command timeout, so the paused PING below really stays in flight (the default fails it after 300 ms).
      const service = await start({ DATA_DIR: dataDir(), REDIS_URL: redis.url, SHUTDOWN_TIMEOUT_MS: "10000", REDIS_COMMAND_TIMEOUT_MS: "5000" })
      await waitForOk(`${service.httpUrl}/ready`, 30_000)
      // A paused Redis holds the readiness PING, so this /ready stays in flight across SIGTERM.
      await redis.client.call("CLIENT", "PAUSE", "2000", "ALL")
      const began = Date.now()
      const inFlight = fetch(`${service.httpUrl}/ready`).then(async (r) => ({ status: r.status, body: await r.text() }))
      await new Promise((r) => setTimeout(r, 300))
      service.child.kill("SIGTERM")
      await new Promise((r) => setTimeout(r, 300))
      await expect(fetch(`${service.httpUrl}/health`)).rejects.toThrow()
      const answered = await inFlight
      expect(Date.now() - began).toBeGreaterThan(1500)
      expect([200, 503]).toContain(answered.status)
      expect(answered.body).toContain("redis")
      const { code } = await service.exited
      expect(code).toBe(0)
      expect(Date.now() - began).toBeLessThan(10_000)
      const messages = logLines(service.output()).map((l) => l["msg"])
      expect(messages).toContain("shutdown: SIGTERM received")
      expect(messages.at(-1)).toBe("shutdown complete")
    } finally {
      redis.stop()
    }
  }, 40_000)
})
