import * as PgClient from "@effect/sql-pg/PgClient"
import { Duration, Effect, Exit, Redacted, Scope } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import type { SqlClient } from "effect/sql/SqlClient"
import { Redis } from "ioredis"
import type { ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import { Agent, request } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { insertSession } from "./control-plane-sql.ts"
import { type BenchResult, freePort, percentile, spawnNode, stop, waitForOk } from "./support.ts"

// One operation: POST /api/session (start, 201) then POST /api/session/:id/stop (200, active ->
// completed), back to back on one keep-alive connection per client. No REST call moves a session
// pending -> active (the media path does), so in the bench's own database a BEFORE INSERT trigger
// stands in for it: the INSERT stores the row as `active`, the statements are the service's own.
// ops_per_s, p50_ms, p99_ms: that operation under CLIENTS concurrent clients; ratio: ops/s against
// bench/baseline-control-plane.ts under the same load. start_p50_ms: POST /api/session from one
// client, one at a time, next to bare_insert_set_p50_ms (the INSERT plus a Redis SET, also one at a
// time), so that neither includes queueing; the start p50 under load is printed above the summary.

const CLIENTS = Number(process.env["BENCH_CLIENTS"] ?? 100)
const WARMUP_MS = 2_000
const MEASURE_MS = Number(process.env["BENCH_SECONDS"] ?? 8) * 1000
const SEQUENTIAL_SAMPLES = 500
const POOL = { min: 5, max: 20 } // the service's PGPOOL_MIN_INGRESS / PGPOOL_MAX_INGRESS defaults
const ADMIN_URL = process.env["BENCH_POSTGRES_ADMIN_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"
const REDIS_URL = process.env["BENCH_REDIS_URL"] ?? "redis://127.0.0.1:6379"
const PROVISIONING_KEY = "bench-provisioning-key"
/** A directory for `--cpu-prof` of the service process (off when unset). */
const CPU_PROF_DIR = process.env["BENCH_CPU_PROF_DIR"]

// ---- HTTP client --------------------------------------------------------------------------

interface Reply {
  readonly status: number
  readonly body: string
}

const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS })

const post = (port: number, path: string, body: string, headers: Record<string, string>): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const req = request({
      host: "127.0.0.1",
      port,
      path,
      method: "POST",
      agent,
      headers: { ...headers, "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) }
    }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (chunk: Buffer) => chunks.push(chunk))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }))
      res.on("error", reject)
    })
    req.on("error", reject)
    req.end(body)
  })

/** A string field of a JSON object reply. */
const field = (reply: Reply, name: string): string => {
  const value: unknown = JSON.parse(reply.body)
  if (typeof value === "object" && value !== null && name in value) {
    const found: unknown = Reflect.get(value, name)
    if (typeof found === "string") return found
  }
  throw new Error(`reply has no string ${name}: ${reply.status} ${reply.body.slice(0, 200)}`)
}

const expect = (reply: Reply, status: number, what: string): Reply => {
  if (reply.status !== status) throw new Error(`${what}: expected ${status}, got ${reply.status} ${reply.body.slice(0, 300)}`)
  return reply
}

// ---- the load -----------------------------------------------------------------------------

interface Load {
  readonly ops: number
  readonly seconds: number
  readonly opMs: ReadonlyArray<number>
  readonly startMs: ReadonlyArray<number>
}

/** Every client loops start + stop until `ms` have passed; latencies per operation and per start. */
const drive = async (port: number, tokens: ReadonlyArray<string>, ms: number): Promise<Load> => {
  const opMs: Array<number> = []
  const startMs: Array<number> = []
  const began = performance.now()
  const end = began + ms
  await Promise.all(tokens.map(async (token) => {
    const auth = { authorization: `Bearer ${token}` }
    while (performance.now() < end) {
      const t0 = performance.now()
      const started = expect(await post(port, "/api/session", "{}", auth), 201, "start")
      const t1 = performance.now()
      expect(await post(port, `/api/session/${field(started, "id")}/stop`, "", auth), 200, "stop")
      const t2 = performance.now()
      opMs.push(t2 - t0)
      startMs.push(t1 - t0)
    }
  }))
  return { ops: opMs.length, seconds: (performance.now() - began) / 1000, opMs, startMs }
}

const measureLoad = async (name: string, port: number, tokens: ReadonlyArray<string>): Promise<Load> => {
  await drive(port, tokens, WARMUP_MS)
  const load = await drive(port, tokens, MEASURE_MS)
  console.log(
    `${name}: ${(load.ops / load.seconds).toFixed(0)} ops/s (${load.ops} in ${load.seconds.toFixed(1)} s, ${tokens.length} clients), ` +
      `op p50 ${percentile(load.opMs, 50).toFixed(2)} ms p99 ${percentile(load.opMs, 99).toFixed(2)} ms, ` +
      `start p50 ${percentile(load.startMs, 50).toFixed(2)} ms p99 ${percentile(load.startMs, 99).toFixed(2)} ms`
  )
  return load
}

// ---- Postgres -----------------------------------------------------------------------------

const withScope = <A, E>(scope: Scope.Scope, effect: Effect.Effect<A, E, Scope.Scope | Reactivity.Reactivity>): Promise<A> =>
  Effect.runPromise(effect.pipe(Scope.provide(scope), Effect.provide(Reactivity.layer)))

/** One statement on the admin database over a short-lived connection. */
const admin = async (statement: string): Promise<void> => {
  const scope = Scope.makeUnsafe()
  try {
    const sql = await withScope(scope, PgClient.makeClient({ url: Redacted.make(ADMIN_URL) }))
    await Effect.runPromise(sql.unsafe(statement))
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

/** Stands in for the media path: new sessions are stored `active`, so the REST stop is legal. */
const ACTIVATE_ON_INSERT = [
  `CREATE FUNCTION bench_activate() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN NEW.state := 'active'; NEW.started_at := now(); RETURN NEW; END $$`,
  `CREATE TRIGGER bench_activate BEFORE INSERT ON sessions FOR EACH ROW EXECUTE FUNCTION bench_activate()`
]

interface Sequential {
  readonly startP50: number
  readonly bareP50: number
}

/**
 * One client, one thing at a time, alternating so both see the same machine: a service start
 * (then its stop, untimed), and one bare INSERT (the service's statement, a pool of the same size)
 * plus one Redis SET.
 */
const sequential = async (port: number, token: string, sql: SqlClient): Promise<Sequential> => {
  const auth = { authorization: `Bearer ${token}` }
  const redis = new Redis(REDIS_URL, { lazyConnect: true })
  await redis.connect()
  try {
    const starts: Array<number> = []
    const bare: Array<number> = []
    for (let i = 0; i < SEQUENTIAL_SAMPLES + 50; i++) {
      const t0 = performance.now()
      const started = expect(await post(port, "/api/session", "{}", auth), 201, "start")
      const t1 = performance.now()
      expect(await post(port, `/api/session/${field(started, "id")}/stop`, "", auth), 200, "stop")
      const t2 = performance.now()
      const rows = await Effect.runPromise(insertSession(sql, "bare", "bare", "user:bare/device:bare"))
      await redis.set(`auralink-bench:control-plane:${i}`, JSON.stringify(rows[0]), "EX", 60)
      const t3 = performance.now()
      if (i >= 50) {
        starts.push(t1 - t0)
        bare.push(t3 - t2)
      }
    }
    return { startP50: percentile(starts, 50), bareP50: percentile(bare, 50) }
  } finally {
    redis.disconnect()
  }
}

// ---- the processes ------------------------------------------------------------------------

/** Registers one device per client (user `bench-<i>`) and exchanges its secret for an access token. */
const tokensFor = async (port: number, clients: number): Promise<ReadonlyArray<string>> => {
  const tokens: Array<string> = []
  const register = async (i: number) => {
    const device = expect(
      await post(port, "/api/auth/devices", JSON.stringify({ userId: `bench-${i}`, name: `bench device ${i}` }), { "x-provisioning-key": PROVISIONING_KEY }),
      201,
      "register device"
    )
    const token = expect(
      await post(port, "/api/auth/token", JSON.stringify({ deviceId: field(device, "deviceId"), deviceSecret: field(device, "deviceSecret") }), {}),
      200,
      "token"
    )
    tokens[i] = field(token, "accessToken")
  }
  const next = { i: 0 }
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next.i < clients) await register(next.i++)
  }))
  return tokens
}

/** `ready`, unless the child exits first (a start-up failure, printed on its stderr). */
const untilExit = (child: ChildProcess, ready: Promise<void>): Promise<void> =>
  Promise.race([
    ready,
    new Promise<never>((_, reject) => child.once("exit", (code) => reject(new Error(`child exited (code ${code}) before it was ready`))))
  ])

const HIGH = "1000000000"

export const run = async (): Promise<BenchResult> => {
  const name = `auralink_bench_${randomBytes(6).toString("hex")}`
  const url = new URL(ADMIN_URL)
  url.pathname = `/${name}`
  const databaseUrl = url.toString()
  await admin(`CREATE DATABASE "${name}"`)
  const scope = Scope.makeUnsafe()
  try {
    // The service, on the fresh database (it runs the migrations).
    const port = await freePort()
    const service = spawnNode([...(CPU_PROF_DIR === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${CPU_PROF_DIR}`]), "src/main.ts"], {
      PORT: String(port),
      GRPC_PORT: "0",
      HOST: "127.0.0.1",
      LOG_LEVEL: "warn",
      DATA_DIR: join(tmpdir(), name),
      DATABASE_URL: databaseUrl,
      REDIS_URL,
      AUTH_PROVISIONING_KEY: PROVISIONING_KEY,
      RATE_LIMIT_AUTH_PER_MINUTE: HIGH,
      RATE_LIMIT_SESSION_PER_MINUTE: HIGH,
      RATE_LIMIT_DEFAULT_PER_MINUTE: HIGH,
      INSTANCE_CAPACITY: HIGH,
      PGPOOL_MIN_INGRESS: String(POOL.min),
      PGPOOL_MAX_INGRESS: String(POOL.max)
    })
    let serviceLoad: Load
    let seq: Sequential
    const sql = await withScope(
      scope,
      PgClient.make({
        url: Redacted.make(databaseUrl),
        minConnections: POOL.min,
        maxConnections: POOL.max,
        connectTimeout: Duration.millis(2000),
        idleTimeout: Duration.millis(10_000)
      })
    )
    try {
      await untilExit(service, waitForOk(`http://127.0.0.1:${port}/ready`, 30_000))
      for (const statement of ACTIVATE_ON_INSERT) await Effect.runPromise(sql.unsafe(statement))
      const tokens = await tokensFor(port, CLIENTS)
      serviceLoad = await measureLoad("service ", port, tokens)
      seq = await sequential(port, tokens[0] ?? "", sql)
    } finally {
      await stop(service)
    }
    await Effect.runPromise(sql.unsafe("TRUNCATE session_events, sessions"))

    // The bare node:http baseline on the same database, driven by the same clients.
    const baselinePort = await freePort()
    const baseline = spawnNode(["bench/baseline-control-plane.ts"], {
      PORT: String(baselinePort),
      DATABASE_URL: databaseUrl,
      PGPOOL_MIN_INGRESS: String(POOL.min),
      PGPOOL_MAX_INGRESS: String(POOL.max)
    })
    let baselineLoad: Load
    try {
      await untilExit(baseline, waitForOk(`http://127.0.0.1:${baselinePort}/health`, 30_000))
      baselineLoad = await measureLoad("baseline", baselinePort, Array.from({ length: CLIENTS }, (_, i) => `baseline-${i}`))
    } finally {
      await stop(baseline)
    }

    const bareP50 = seq.bareP50
    const opsPerS = serviceLoad.ops / serviceLoad.seconds
    const baselineOpsPerS = baselineLoad.ops / baselineLoad.seconds
    const startP50 = seq.startP50
    const ratio = opsPerS / baselineOpsPerS
    console.log(
      `one client, sequential, interleaved (n=${SEQUENTIAL_SAMPLES}): service start p50 ${startP50.toFixed(2)} ms, ` +
        `bare INSERT + Redis SET p50 ${bareP50.toFixed(2)} ms (start = ${(startP50 / bareP50).toFixed(2)}x)`
    )
    console.log(`service/baseline ops/s ratio ${ratio.toFixed(3)} (baseline ${baselineOpsPerS.toFixed(0)} ops/s)`)
    const figures = [
      `ops_per_s=${opsPerS.toFixed(0)}`,
      `p50_ms=${percentile(serviceLoad.opMs, 50).toFixed(2)}`,
      `p99_ms=${percentile(serviceLoad.opMs, 99).toFixed(2)}`,
      `start_p50_ms=${startP50.toFixed(2)}`,
      `bare_insert_set_p50_ms=${bareP50.toFixed(2)}`,
      `ratio=${ratio.toFixed(3)}`
    ]
    return { summary: `control-plane ${figures.join(" ")}` }
  } finally {
    agent.destroy()
    await Effect.runPromise(Scope.close(scope, Exit.void))
    await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
  }
}
