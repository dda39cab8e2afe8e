import autocannon from "autocannon"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type BenchResult, freePort, spawnNode, stop, waitForOk } from "./support.ts"

const CONNECTIONS = 10
const SECONDS = 5
const ROUNDS = 2

const load = async (url: string): Promise<number> => {
  const result = await autocannon({ url, connections: CONNECTIONS, duration: SECONDS, pipelining: 1 })
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${url}: ${result.non2xx} non-2xx, ${result.errors} errors`)
  return result.requests.average
}

/** Starts a server process, warms it up, measures GET /health requests/s, stops it. */
const measure = async (args: ReadonlyArray<string>, env: Record<string, string>): Promise<number> => {
  const port = await freePort()
  const child = spawnNode(args, { ...env, PORT: String(port) })
  try {
    const url = `http://127.0.0.1:${port}/health`
    await waitForOk(url, 30_000)
    await autocannon({ url, connections: CONNECTIONS, duration: 1 })
    return await load(url)
  } finally {
    await stop(child)
  }
}

/**
 * GET /health through the whole service (HttpApi, middleware, logging, metrics) against a bare
 * node:http handler, same connections and duration, alternating rounds to spread machine noise.
 */
export const run = async (): Promise<BenchResult> => {
  const service = { GRPC_PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "warn", DATA_DIR: mkdtempSync(join(tmpdir(), "bench-")) }
  const rps: Array<number> = []
  const baseline: Array<number> = []
  for (let round = 0; round < ROUNDS; round++) {
    baseline.push(await measure(["bench/baseline-http.ts"], {}))
    rps.push(await measure(["src/main.ts"], service))
    console.log(`round ${round + 1}: service ${rps.at(-1)?.toFixed(0)} req/s, baseline ${baseline.at(-1)?.toFixed(0)} req/s`)
  }
  const mean = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / xs.length
  const ratio = mean(rps) / mean(baseline)
  return { summary: `http-health rps=${mean(rps).toFixed(0)} baseline_rps=${mean(baseline).toFixed(0)} ratio=${ratio.toFixed(3)}` }
}
