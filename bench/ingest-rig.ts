// What the audio ingest benches share (audio-ingest, whip): the service on its own fresh Postgres
// database sending to a fake ASR gateway, its JSON API, replayed Opus RTP paced per stream, and the
// CPU/RSS of the service's process tree.
import * as PgClient from "@effect/sql-pg/PgClient"
import { Effect, Exit, Redacted, Scope } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import { type ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import { readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import type { RTCRtpSender } from "werift"
import type { RemoteFakeAsr } from "./fake-asr-client.ts"
import { expectStatus, freePort, httpClient, percentile, type Reply, spawnNode, stop, waitForOk } from "./support.ts"

export const ADMIN_URL = process.env["BENCH_POSTGRES_ADMIN_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"
const REDIS_URL = process.env["BENCH_REDIS_URL"] ?? "redis://127.0.0.1:6379"
export const PROVISIONING_KEY = "bench-provisioning-key"
const HIGH = "1000000000"
export const FRAME_MS = 20
export const TS_PER_FRAME = 960

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
export const fmt = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : "na")

// ---- HTTP ---------------------------------------------------------------------------------

/**
 * A connection per call: a kept-alive connection left idle between two steps is closed by the
 * server after its keep-alive timeout (5 s), and a busy load generator whose timers ran late reused
 * one just then ("other side closed" opening 200-250 sessions).
 */
const callOnce = httpClient(false)

/**
 * Tries of a call the service answers 408 or 503, as a client repeats them:
 * - 408: its headers did not arrive within the service's `HTTP_HEADERS_TIMEOUT_MS` of the
 *   connection, so no handler ran and RFC 9110 lets the client repeat it (seen only while a
 *   saturated load generator was opening 200-400 sessions);
 * - 503 with `retryAfterSeconds`: a media worker did not answer within `MEDIASOUP_WORKER_TIMEOUT_MS`
 *   and the service asks to retry after that long (seen opening 50 sessions at once next to 200
 *   streaming to the gateway).
 */
const TRIES = 3

/** How long to wait before repeating a call answered `reply` (ms); undefined: not to repeat it. */
const repeatAfterMs = (reply: Reply): number | undefined => {
  if (reply.status === 408) return 0
  if (reply.status !== 503) return undefined
  try {
    const body: unknown = JSON.parse(reply.body)
    const seconds: unknown = typeof body === "object" && body !== null ? Reflect.get(body, "retryAfterSeconds") : undefined
    return typeof seconds === "number" ? seconds * 1000 : undefined
  } catch {
    return undefined
  }
}

/** One JSON call that must answer `status`; its parsed body. */
export const api = async (base: string, method: string, path: string, body: unknown, headers: Record<string, string>, status: number): Promise<unknown> => {
  const text = body === undefined ? undefined : JSON.stringify(body)
  for (let tried = 1;; tried++) {
    const started = performance.now()
    const reply = await callOnce(`${base}${path}`, method, headers, text)
    const waitMs = repeatAfterMs(reply)
    if (waitMs === undefined || tried === TRIES) {
      expectStatus(reply, status, `${method} ${path}`)
      const value: unknown = reply.body.length > 0 ? JSON.parse(reply.body) : undefined
      return value
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1)
    console.error(`${method} ${path}: ${reply.status} after ${seconds} s (${reply.body.slice(0, 120)}); repeated after ${waitMs} ms`)
    await sleep(waitMs)
  }
}

export const field = (value: unknown, name: string): string => {
  if (typeof value === "object" && value !== null && name in value) {
    const found: unknown = Reflect.get(value, name)
    if (typeof found === "string") return found
    if (typeof found === "number") return String(found)
  }
  throw new Error(`reply has no ${name}: ${JSON.stringify(value).slice(0, 200)}`)
}

export const accessToken = async (base: string, userId: string): Promise<string> => {
  const device = await api(base, "POST", "/api/auth/devices", { userId, name: `bench ${userId}` }, { "x-provisioning-key": PROVISIONING_KEY }, 201)
  const token = await api(base, "POST", "/api/auth/token", { deviceId: field(device, "deviceId"), deviceSecret: field(device, "deviceSecret") }, {}, 200)
  return field(token, "accessToken")
}

// ---- the service --------------------------------------------------------------------------

/** Where mediasoup listens, for the service and bench/audio-ingest's baseline server alike. */
export const MEDIA_ENV: Readonly<Record<string, string>> = {
  MEDIASOUP_LISTEN_IP: "127.0.0.1",
  RTC_MIN_PORT: "40000",
  RTC_MAX_PORT: "44999",
  // WebRTC transports share each worker's WebRtcServer port (the default); plain ones take the range.
  RTC_PORT: "45000"
}

const admin = async (statement: string): Promise<void> => {
  const scope = Scope.makeUnsafe()
  try {
    const sql = await Effect.runPromise(PgClient.makeClient({ url: Redacted.make(ADMIN_URL) }).pipe(Scope.provide(scope), Effect.provide(Reactivity.layer)))
    await Effect.runPromise(sql.unsafe(statement))
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

/** `ready`, unless `child` exits first. */
export const untilExit = (child: ChildProcess, ready: Promise<void>): Promise<void> =>
  Promise.race([
    ready,
    new Promise<never>((_, reject) => child.once("exit", (code) => reject(new Error(`service exited (code ${code}) before it was ready`))))
  ])

export interface BenchService {
  readonly base: string
  readonly pid: number
  /** The service's database (made for it, unless the environment named another). */
  readonly databaseUrl: string
}

/**
 * Runs `use` against `node src/main.ts` on a fresh Postgres database (dropped afterwards) and a
 * temporary data dir, sending audio to the fake ASR gateway at `asrUrl` (undefined: to the embedded
 * default, WAV recordings in the data dir); per-client caps and rate
 * limits are lifted (one bench user opens every session: they are not what is measured).
 */
export const withService = async <A>(
  asrUrl: string | undefined,
  use: (service: BenchService) => Promise<A>,
  /** Extra environment, or a function of the service's base URL (e.g. for PUBLIC_URL). */
  env: Record<string, string> | ((base: string) => Record<string, string>) = {}
): Promise<A> => {
  const name = `auralink_bench_${randomBytes(6).toString("hex")}`
  const url = new URL(ADMIN_URL)
  url.pathname = `/${name}`
  await admin(`CREATE DATABASE "${name}"`)
  const dataDir = join(tmpdir(), name)
  try {
    const port = await freePort()
    const base = `http://127.0.0.1:${port}`
    const extra = typeof env === "function" ? env(base) : env
    const service = spawnNode(["src/main.ts"], {
      PORT: String(port),
      GRPC_PORT: "0",
      HOST: "127.0.0.1",
      LOG_LEVEL: "warn",
      DATA_DIR: dataDir,
      DATABASE_URL: url.toString(),
      REDIS_URL,
      ...(asrUrl === undefined ? {} : { ASR_GATEWAY_URL: asrUrl }),
      AUTH_PROVISIONING_KEY: PROVISIONING_KEY,
      ...MEDIA_ENV,
      SESSION_SWEEP_INTERVAL_MS: "3600000",
      RATE_LIMIT_AUTH_PER_MINUTE: HIGH,
      RATE_LIMIT_SESSION_PER_MINUTE: HIGH,
      RATE_LIMIT_DEFAULT_PER_MINUTE: HIGH,
      MAX_OPEN_SESSIONS_PER_USER: HIGH,
      MAX_OPEN_SESSIONS_PER_DEVICE: HIGH,
      MAX_PENDING_SESSIONS_PER_USER: HIGH,
      MAX_PENDING_SESSIONS_PER_DEVICE: HIGH,
      // Admission control is not what is measured either (bench/cluster measures it).
      INSTANCE_CAPACITY: HIGH,
      ...extra
    })
    try {
      await untilExit(service, waitForOk(`${base}/ready`, 30_000))
      return await use({ base, pid: service.pid ?? 0, databaseUrl: extra["DATABASE_URL"] ?? url.toString() })
    } finally {
      await stop(service)
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
    await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
  }
}

// ---- RTP replay ---------------------------------------------------------------------------

/** Packet `index` of a stream: a captured packet with this stream's sequence, timestamp, SSRC and payload type. */
export const packetAt = (templates: ReadonlyArray<Buffer>, index: number, ssrc: number, payloadType: number): Buffer => {
  const template = templates[index % templates.length]
  if (template === undefined) throw new Error("no RTP packets captured")
  const packet = Buffer.from(template)
  packet[1] = (index === 0 ? 0x80 : 0) | (payloadType & 0x7f) // marker on the first packet only
  packet.writeUInt16BE(index & 0xffff, 2)
  packet.writeUInt32BE((index * TS_PER_FRAME) >>> 0, 4)
  packet.writeUInt32BE(ssrc, 8)
  return packet
}

export interface Stream {
  /** Which way the stream reaches the service (e.g. "rtp", "pcm", "whip"). */
  readonly path: string
  readonly sessionId: string
  /** Every how many ms the next packet or chunk is due. */
  readonly everyMs: number
  /** Sends packet/chunk `index` of this stream. */
  readonly send: (index: number) => void
  readonly close: () => Promise<void>
  /** performance.now() of packet 0. */
  startedAt: number
  /** Packets sent so far (the next packet's index, = its RTP sequence mod 2^16). */
  sent: number
}

/** Sends every stream's due packets/chunks every ~FRAME_MS until stopped; records how late the ticks ran. */
export const startSender = (streams: Array<Stream>) => {
  const lateMs: Array<number> = []
  let running = true
  let timer: NodeJS.Timeout | undefined
  const tick = () => {
    const now = performance.now()
    let next = Number.POSITIVE_INFINITY
    for (const stream of streams) {
      if (stream.startedAt === 0) stream.startedAt = now
      let due = stream.startedAt + stream.sent * stream.everyMs
      if (stream.sent > 0 && due <= now) lateMs.push(now - due)
      while (due <= now) {
        stream.send(stream.sent)
        stream.sent += 1
        due += stream.everyMs
      }
      next = Math.min(next, due)
    }
    if (running) timer = setTimeout(tick, Math.max(0, Math.min(FRAME_MS, next - performance.now())))
  }
  tick()
  return {
    lateMs,
    stop: () => {
      running = false
      if (timer !== undefined) clearTimeout(timer)
    }
  }
}

// ---- measurements -------------------------------------------------------------------------

/** CPU ticks (utime + stime) and RSS bytes of `pid` and its direct children (the media workers). */
export const processTree = (pid: number): { readonly ticks: number; readonly mainTicks: number; readonly rssBytes: number } => {
  const pids = [pid]
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const children = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim()
    if (children.length > 0) pids.push(...children.split(/\s+/).map(Number))
  }
  let ticks = 0
  let mainTicks = 0
  let rssBytes = 0
  for (const p of pids) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8")
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ") // from field 3 (state) on
      const own = Number(fields[11]) + Number(fields[12]) // utime (14), stime (15)
      ticks += own
      if (p === pid) mainTicks = own
      const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"))
      rssBytes += Number(rss?.[1] ?? 0) * 1024
    } catch {
      // exited meanwhile
    }
  }
  return { ticks, mainTicks, rssBytes }
}
export const CLOCK_TICKS = 100 // USER_HZ on Linux

/** Packets/chunks a stream sent in a window: indexes [from, to). */
export interface SentRange {
  readonly sessionId: string
  /** The stream's path (e.g. "rtp", "pcm"). */
  readonly path: string
  readonly from: number
  readonly to: number
}

/** What the sender of a window reports at its end. */
export interface LoadWindow {
  readonly ranges: ReadonlyArray<SentRange>
  /** CPU of the sending process over the window, % of one core. */
  readonly cpuPct: number
  /** How late the sender's ticks ran (p99, ms). */
  readonly sendLateP99: number
}

/** The sender of a measured window: told when the window starts, asked what it sent when it ends. */
export interface Load {
  readonly start: () => Promise<void>
  readonly end: () => Promise<LoadWindow>
}

/** Streams sent by this process (`startSender`, its lateness in `sendLate`): their sent counts and this process's CPU. */
export const localLoad = (streams: ReadonlyArray<Stream>, sendLate: Array<number>): Load => {
  let from = new Map<string, number>()
  let cpu0 = process.cpuUsage()
  let t0 = performance.now()
  return {
    start: () => {
      from = new Map(streams.map((s) => [s.sessionId, s.sent]))
      sendLate.length = 0
      cpu0 = process.cpuUsage()
      t0 = performance.now()
      return Promise.resolve()
    },
    end: () => {
      const cpu = process.cpuUsage(cpu0)
      const seconds = (performance.now() - t0) / 1000
      return Promise.resolve({
        ranges: streams.map((s) => ({ sessionId: s.sessionId, path: s.path, from: from.get(s.sessionId) ?? 0, to: s.sent })),
        cpuPct: (100 * (cpu.user + cpu.system)) / 1e6 / seconds,
        sendLateP99: percentile(sendLate, 99)
      })
    }
  }
}

/**
 * One measured window of `load`: what each stream sent (the ranges the receiver is asked about),
 * the CPU of the server's process tree (`pid`) and of the sending process, the sender's lateness
 * p99, and `probe` (the server's metrics) read at both ends; then `graceMs` for the last packets
 * to reach the receiver.
 */
export const measureWindow = async <A>(
  pid: number,
  load: Load,
  timing: { readonly windowMs: number; readonly graceMs: number },
  probe: () => Promise<A>,
  /** Another process whose CPU over the window is reported too (the fake ASR gateway). */
  sidePid?: number
) => {
  const before = await probe()
  await load.start()
  const tree0 = processTree(pid)
  const side0 = sidePid === undefined ? undefined : processTree(sidePid)
  const t0 = performance.now()
  await sleep(timing.windowMs)
  const seconds = (performance.now() - t0) / 1000
  const tree1 = processTree(pid)
  const side1 = sidePid === undefined ? undefined : processTree(sidePid)
  const sent = await load.end()
  const after = await probe()
  await sleep(timing.graceMs)
  return {
    ranges: sent.ranges,
    sent: sent.ranges.reduce((n, r) => n + r.to - r.from, 0),
    before,
    after,
    cpuPct: (100 * (tree1.ticks - tree0.ticks)) / CLOCK_TICKS / seconds,
    mainCpuPct: (100 * (tree1.mainTicks - tree0.mainTicks)) / CLOCK_TICKS / seconds,
    rssMb: tree1.rssBytes / 1024 / 1024,
    loadCpuPct: sent.cpuPct,
    sideCpuPct: side0 === undefined || side1 === undefined ? undefined : (100 * (side1.mainTicks - side0.mainTicks)) / CLOCK_TICKS / seconds,
    sendLateP99: sent.sendLateP99
  }
}

// ---- set-up time --------------------------------------------------------------------------

/** A setup that has not delivered its first chunk by then fails the run. */
const FIRST_CHUNK_TIMEOUT_MS = 10_000

/** Packet `index` of the captured Opus through a werift sender (its SSRC, the negotiated payload type). */
export const opusSender = (sender: RTCRtpSender, payloadType: number, templates: ReadonlyArray<Buffer>) => (index: number): void =>
  void sender.sendRtp(packetAt(templates, index, sender.ssrc, payloadType)).catch(() => {})

/** Calls `send(index)` every FRAME_MS until the session's first chunk reached the fake; its arrival time (epoch ms). */
export const firstChunk = async (fake: RemoteFakeAsr, sessionId: string, send: (index: number) => void): Promise<number> => {
  const deadline = Date.now() + FIRST_CHUNK_TIMEOUT_MS
  const sent = startSender([{ path: "setup", sessionId, everyMs: FRAME_MS, send, close: async () => {}, startedAt: 0, sent: 0 }])
  try {
    while (Date.now() < deadline) {
      const at = await fake.firstChunkAt(sessionId)
      if (at !== undefined) return at
      await sleep(5)
    }
    throw new Error(`session ${sessionId}: no chunk at the fake ASR within ${FIRST_CHUNK_TIMEOUT_MS} ms`)
  } finally {
    sent.stop()
  }
}
