import { execFileSync } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { type ServiceProcess, startService, waitForOk } from "../support/process.ts"
import { asRecord, authEnv, call, signedInClient } from "../support/service-client.ts"

const running: Array<ServiceProcess> = []
const stopped: Array<number> = []
afterEach(() => {
  for (const pid of stopped.splice(0)) {
    try {
      process.kill(pid, "SIGCONT")
    } catch {
      // already gone
    }
  }
  for (const service of running.splice(0)) service.child.kill("SIGKILL")
})

/** The mediasoup workers: the service's child processes, in start order (slot 0 first). */
const workerPids = (service: ServiceProcess): Array<number> =>
  execFileSync("ps", ["-o", "pid=", "--ppid", String(service.child.pid)], { encoding: "utf8" })
    .split("\n").map((l) => Number(l.trim())).filter((n) => n > 0).sort((a, b) => a - b)

const mediaWorkersEntry = async (url: string) => {
  const ready = await call(`${url}/ready`)
  const deps = asRecord(ready.json["dependencies"])
  return { status: ready.status, entry: deps["media_workers"] === undefined ? undefined : asRecord(deps["media_workers"]) }
}

const eventually = async (check: () => Promise<boolean>, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`condition not met within ${timeoutMs} ms`)
}

describe("a stalled media worker (SIGSTOP)", () => {
  it("is shown in /ready, new sessions avoid it, its requests get 503 at once; it recovers on SIGCONT", async () => {
    const minPort = 41_000 + Math.floor(Math.random() * 400) * 40
    const service = await startService({
      ...authEnv,
      DATA_DIR: mkdtempSync(join(tmpdir(), "auralink-data-")),
      MEDIASOUP_WORKERS: "2",
      MEDIASOUP_LISTEN_IP: "127.0.0.1",
      RTC_MIN_PORT: String(minPort),
      RTC_MAX_PORT: String(minPort + 39),
      MEDIASOUP_WORKER_PROBE_INTERVAL_MS: "250",
      MEDIASOUP_WORKER_TIMEOUT_MS: "750"
    })
    running.push(service)
    await waitForOk(`${service.httpUrl}/ready`, 30_000)
    expect((await mediaWorkersEntry(service.httpUrl)).entry?.["status"]).toBe("up")
    const client = await signedInClient(service.httpUrl)
    const slotOfPort = (port: unknown) => (Number(port) - minPort < 20 ? 0 : 1)
    const newSessionOnWorker = async () => {
      const session = await client.post("/api/session")
      expect(session.status).toBe(201)
      const id = String(session.json["id"])
      const transport = await client.post(`/api/webrtc/${id}/plain-transports`, { comedia: true }, 5_000)
      return { id, transport, worker: transport.status === 201 ? slotOfPort(transport.json["port"]) : -1 }
    }

    const a = await newSessionOnWorker()
    expect(a.transport.status).toBe(201)
    const pids = workerPids(service)
    expect(pids).toHaveLength(2)
    const stalledPid = pids[a.worker] ?? 0
    process.kill(stalledPid, "SIGSTOP")
    stopped.push(stalledPid)

    await eventually(async () => (await mediaWorkersEntry(service.httpUrl)).entry?.["status"] === "down", 5_000)
    const shown = await mediaWorkersEntry(service.httpUrl)
    // One stalled worker of two does not take the instance out of rotation; /ready names it.
    expect(shown.status).toBe(200)
    expect(String(shown.entry?.["lastError"])).toContain(`worker ${a.worker} (pid ${stalledPid}) stalled`)

    // New sessions go to the other worker, answered promptly.
    const fresh = [await newSessionOnWorker(), await newSessionOnWorker(), await newSessionOnWorker()]
    expect(fresh.map((s) => s.transport.status)).toEqual([201, 201, 201])
    expect(fresh.map((s) => s.worker)).toEqual([1 - a.worker, 1 - a.worker, 1 - a.worker])
    expect(Math.max(...fresh.map((s) => s.transport.ms))).toBeLessThan(2_000)

    // A request touching the stalled worker: 503 with Retry-After, at once.
    const touched = await client.post(`/api/webrtc/${a.id}/plain-transports`, { comedia: true }, 5_000)
    expect(touched.status).toBe(503)
    expect(touched.headers.get("retry-after")).not.toBeNull()
    expect(touched.ms).toBeLessThan(500)
    const stats = await client.get(`/api/webrtc/${a.id}/transports/${String(a.transport.json["id"])}/stats`, 5_000)
    expect(stats.status).toBe(503)

    process.kill(stalledPid, "SIGCONT")
    stopped.splice(stopped.indexOf(stalledPid), 1)
    await eventually(async () => (await mediaWorkersEntry(service.httpUrl)).entry?.["status"] === "up", 5_000)
    const again = await client.post(`/api/webrtc/${a.id}/plain-transports`, { comedia: true }, 5_000)
    expect(again.status).toBe(201)
    expect(slotOfPort(again.json["port"])).toBe(a.worker)
    expect(service.output()).toContain("media_worker_stalled")
  }, 60_000)
})
