import autocannon from "autocannon"
import type { ChildProcess } from "node:child_process"
import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type BenchResult, freePort, spawnNode, stop, waitForOk } from "./support.ts"

const CONNECTIONS = 10
const SECONDS = 5
const ROUNDS = 2

/** CPU seconds (user + system) a process has used so far, from /proc (in USER_HZ, 100 per second on Linux); undefined elsewhere. */
const cpuSeconds = (child: ChildProcess): number | undefined => {
  try {
    const fields = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? []
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return undefined
  }
}

interface Load {
  readonly rps: number
  /** The server's CPU time per request in µs: unlike req/s, barely moved by the load generator sharing the cores. */
  readonly cpuUs: number
}

const load = async (url: string, child: ChildProcess): Promise<Load> => {
  const before = cpuSeconds(child)
  const result = await autocannon({ url, connections: CONNECTIONS, duration: SECONDS, pipelining: 1 })
  const after = cpuSeconds(child)
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx, ${result.errors} errors`)
  const cpuUs = before === undefined || after === undefined ? Number.NaN : ((after - before) * 1e6) / result.requests.total
  return { rps: result.requests.average, cpuUs }
}

/** Starts a server process, warms it up, measures GET /health, stops it. */
const measure = async (args: ReadonlyArray<string>, env: Record<string, string>): Promise<Load> => {
  const port = await freePort()
  const child = spawnNode(args, { ...env, PORT: String(port) })
  try {
    const url = `http://127.0.0.1:${port}/health`
    await waitForOk(url, 30_000)
    await autocannon({ url, connections: CONNECTIONS, duration: 1 })
    return await load(url, child)
  } finally {
    await stop(child)
  }
}

const SERVERS = {
  baseline: ["bench/baseline-http.ts"],
  // effect's own floors: a bare HttpRouter route, and one HttpApi endpoint (bench/http-health-effect.ts)
  router: ["bench/http-health-effect.ts", "router"],
  api: ["bench/http-health-effect.ts", "api"],
  service: ["src/main.ts"]
} as const

/**
 * GET /health through the whole service (HttpApi, middleware, logging, metrics) against a bare
 * node:http handler, same connections and duration, alternating rounds to spread machine noise;
 * beside them effect's floors (a bare HttpRouter route, one HttpApi endpoint) and each server's
 * CPU time per request.
 */
export const run = async (): Promise<BenchResult> => {
  const service = { GRPC_PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "warn", DATA_DIR: mkdtempSync(join(tmpdir(), "bench-")) }
  const runs = new Map<keyof typeof SERVERS, Array<Load>>()
  for (let round = 0; round < ROUNDS; round++) {
    const line: Array<string> = []
    for (const name of ["baseline", "router", "api", "service"] as const) {
      const result = await measure(SERVERS[name], name === "service" ? service : {})
      runs.set(name, [...(runs.get(name) ?? []), result])
      line.push(`${name} ${result.rps.toFixed(0)} req/s ${result.cpuUs.toFixed(0)} µs cpu/req`)
    }
    console.log(`round ${round + 1}: ${line.join(", ")}`)
  }
  const mean = (name: keyof typeof SERVERS, pick: (l: Load) => number) => {
    const xs = (runs.get(name) ?? []).map(pick)
    return xs.reduce((a, b) => a + b, 0) / xs.length
  }
  const rps = (name: keyof typeof SERVERS) => mean(name, (l) => l.rps)
  const cpu = (name: keyof typeof SERVERS) => mean(name, (l) => l.cpuUs).toFixed(0)
  const ratio = rps("service") / rps("baseline")
  return {
    summary: `http-health rps=${rps("service").toFixed(0)} baseline_rps=${rps("baseline").toFixed(0)} router_rps=${rps("router").toFixed(0)} api_rps=${
      rps("api").toFixed(0)
    } cpu_us=${cpu("service")} baseline_cpu_us=${cpu("baseline")} router_cpu_us=${cpu("router")} api_cpu_us=${cpu("api")} ratio=${ratio.toFixed(3)}`
  }
}
