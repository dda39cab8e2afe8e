import { spawn, type ChildProcess } from "node:child_process"
import { type Agent, request } from "node:http"
import { createServer } from "node:net"
import { asServiceNode } from "../src/config/node-flags.ts"

/** A free TCP port on 127.0.0.1. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

/** Polls `url` until it answers 200, or fails after `timeoutMs`. */
export const waitForOk = async (url: string, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    // Bounded: a request that is never answered must not outlast the deadline.
    const ok = await fetch(url, { signal: AbortSignal.timeout(Math.max(100, Math.min(2_000, deadline - Date.now()))) }).then((r) => r.ok, () => false)
    if (ok) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`)
}

/** Extra Node flags for the services a benchmark starts, e.g. `BENCH_SERVICE_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"`. */
const serviceNodeArgs = (process.env["BENCH_SERVICE_NODE_ARGS"] ?? "").split(" ").filter((a) => a.length > 0)

/** `BENCH_SERVICE_STDOUT=1` shows the services' stdout (their logs) too; by default only stderr. */
const serviceStdout = process.env["BENCH_SERVICE_STDOUT"] === undefined ? "ignore" : "inherit"

/**
 * Spawns `node <args>` with extra environment; the child is killed when the caller stops it. Every
 * server a benchmark starts, the service and its baselines alike, runs with the service's V8 flags
 * and compile cache.
 */
export const spawnNode = (args: ReadonlyArray<string>, env: Record<string, string>): ChildProcess => {
  const node = asServiceNode([...serviceNodeArgs, ...args], env)
  return spawn(process.execPath, node.args, { env: node.env, stdio: ["ignore", serviceStdout, "inherit"] })
}

export const stop = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
  })

export interface BenchResult {
  /** `name key=value ... ratio=R`, printed as the benchmark's last line. */
  readonly summary: string
}

/** The nearest-rank percentile `p` (0-100) of `values`; NaN when empty. */
export const percentile = (values: ReadonlyArray<number>, p: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN
}

// ---- HTTP -----------------------------------------------------------------------------------

export interface Reply {
  readonly status: number
  readonly body: string
}

/**
 * JSON calls through node:http (far less overhead per call than fetch) on `agent`: a pooled
 * keep-alive one, or `false` for a connection per call (closed after it). No answer in 10 s fails.
 */
export const httpClient = (agent: Agent | false) => (url: string, method: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const extra: Record<string, string> = body === undefined ? {} : { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) }
    const req = request(url, { method, agent, headers: { ...headers, ...extra }, timeout: 10_000 }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (chunk: Buffer) => chunks.push(chunk))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }))
      res.on("error", reject)
    })
    req.on("timeout", () => req.destroy(new Error(`${method} ${url}: no answer in 10 s`)))
    req.on("error", reject)
    req.end(body)
  })

export const expectStatus = (reply: Reply, status: number, what: string): Reply => {
  if (reply.status !== status) throw new Error(`${what}: expected ${status}, got ${reply.status} ${reply.body.slice(0, 300)}`)
  return reply
}
