// What bench/room-sync.bench.ts runs against: a fresh Postgres database, the fake LiveKit server (in
// this process), two service processes on one Redis key prefix, and a Redis connection of its own.
// `close` undoes all of it (processes killed, keys under the prefix deleted, database dropped), once.
import * as PgClient from "@effect/sql-pg/PgClient"
import { Effect, Redacted } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import { Redis } from "ioredis"
import { randomBytes } from "node:crypto"
import { existsSync, realpathSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { fileURLToPath } from "node:url"
import { FakeLiveKit } from "../test/support/fake-livekit.ts"
import { ADMIN_URL, dropDatabase } from "../test/support/postgres.ts"
import { type ServiceProcess, startService } from "../test/support/process.ts"
import { deleteKeys, REDIS_URL } from "../test/support/redis.ts"
import { agent } from "./room-sync-probe.ts"
import { waitForOk } from "./support.ts"

export const PROVISIONING_KEY = "bench-provisioning-key-0123456789abcdef"
export const JWT_SECRET = "bench-jwt-secret-0123456789abcdef-0123456789"
const API_KEY = "bench-livekit-key"
const API_SECRET = "bench-livekit-secret-0123456789abcdef"
const HIGH = "100000000"

/**
 * A git worktree shares the main checkout's node_modules (a symlink), and the worker that
 * `npm install` built lies beside it in `.media/`; the service would look in the worktree's own.
 */
const mediaWorker = (): Record<string, string> => {
  if (process.env["MEDIASOUP_WORKER_BIN"] !== undefined) return {}
  const root = join(dirname(fileURLToPath(import.meta.url)), "..")
  const modules = join(root, "node_modules")
  const beside = existsSync(modules) ? join(realpathSync(modules), "..", ".media", "mediasoup-worker") : ""
  return existsSync(join(root, ".media", "mediasoup-worker")) || !existsSync(beside) ? {} : { MEDIASOUP_WORKER_BIN: beside }
}

export interface Rig {
  readonly fake: FakeLiveKit
  /** The instance the webhooks go to. */
  readonly a: ServiceProcess
  /** The instance reads are made on. */
  readonly b: ServiceProcess
  readonly redis: Redis
  /** `<REDIS_KEY_PREFIX>`, e.g. `bench-room-sync-1a2b3c:`. */
  readonly prefix: string
  readonly close: () => Promise<void>
}

const stopService = async (service: ServiceProcess): Promise<void> => {
  if (service.child.exitCode !== null || service.child.signalCode !== null) return
  service.child.kill("SIGTERM")
  const exited = await Promise.race([service.exited.then(() => true), sleep(10_000).then(() => false)])
  if (!exited) {
    service.child.kill("SIGKILL")
    await service.exited
  }
}

/** Resolves when the instance answers /ready; rejects (with its output) if it exits first. */
const ready = async (service: ServiceProcess, name: string): Promise<void> => {
  const exited = service.exited.then(({ code, signal }) => {
    throw new Error(`instance ${name} exited (${code ?? signal}) before it was ready:\n${service.output().slice(-3000)}`)
  })
  await Promise.race([waitForOk(`${service.httpUrl}/ready`, 90_000), exited])
}

/** A database named for this bench and run (`auralink_bench_room_sync_<run>`), so a leftover is never mistaken for another's. */
const databaseFor = (run: string): string => {
  const url = new URL(ADMIN_URL)
  url.pathname = `/auralink_bench_room_sync_${run}`
  return url.toString()
}

const createDatabase = (url: string): Promise<void> =>
  Effect.runPromise(
    PgClient.makeClient({ url: Redacted.make(ADMIN_URL) }).pipe(
      Effect.flatMap((sql) => sql.unsafe(`CREATE DATABASE "${new URL(url).pathname.slice(1)}"`)),
      Effect.scoped,
      Effect.provide(Reactivity.layer),
      Effect.asVoid
    )
  )

export const startRig = async (syncIntervalMs: number): Promise<Rig> => {
  const run = randomBytes(4).toString("hex")
  const prefix = `bench-room-sync-${run}:`
  const databaseUrl = databaseFor(run)
  const services: Array<ServiceProcess> = []
  const dataDirs: Array<string> = []
  const fake = new FakeLiveKit({ apiKey: API_KEY, apiSecret: API_SECRET })
  const redis = new Redis(REDIS_URL, { lazyConnect: true })
  let closed: Promise<void> | undefined
  const creating = new Set<Promise<unknown>>()
  /** Each thing is made through here: `close` waits for what is being made, so nothing made is left behind. */
  const make = async <A>(create: () => Promise<A>): Promise<A> => {
    if (closed !== undefined) throw new Error("interrupted")
    const making = create()
    creating.add(making)
    try {
      return await making
    } finally {
      creating.delete(making)
    }
  }
  const interrupted = () => void close().finally(() => process.exit(130))
  const close = () =>
    closed ??= (async () => {
      await Promise.allSettled([...creating])
      await Promise.allSettled(services.map(stopService))
      await fake.stop().catch(() => undefined)
      agent.destroy()
      redis.disconnect()
      // SCAN + DEL of the whole prefix: the services' keys and the baseline's.
      const deleted = await deleteKeys(`${prefix}*`).catch((error: unknown) => {
        console.error(`could not delete Redis keys ${prefix}*: ${String(error)}`)
        return 0
      })
      console.log(`cleanup: ${services.length} instance(s) stopped, ${deleted} Redis keys under ${prefix} deleted, database dropped`)
      await Effect.runPromise(dropDatabase(databaseUrl))
      for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true })
      // Only now: a second ^C (or `timeout` signalling both the process and its group) must not cut the cleanup short.
      process.off("SIGINT", interrupted)
      process.off("SIGTERM", interrupted)
    })()
  // From the first thing made on: an interrupted run (^C, a CI timeout) cleans up too.
  process.on("SIGINT", interrupted)
  process.on("SIGTERM", interrupted)
  try {
    await make(() => redis.connect())
    await make(() => fake.start())
    await make(() => createDatabase(databaseUrl))
    const env = (name: string): Record<string, string> => {
      const dataDir = join(tmpdir(), `auralink-bench-room-sync-${run}-${name}`)
      dataDirs.push(dataDir)
      return {
        LOG_LEVEL: "warn",
        DATA_DIR: dataDir,
        DATABASE_URL: databaseUrl,
        REDIS_URL,
        REDIS_KEY_PREFIX: prefix,
        JWT_SECRET,
        AUTH_PROVISIONING_KEY: PROVISIONING_KEY,
        WEBRTC_SERVER_URL: fake.url,
        WEBRTC_API_KEY: API_KEY,
        WEBRTC_API_SECRET: API_SECRET,
        ROOM_SYNC_INTERVAL_MS: String(syncIntervalMs),
        MEDIASOUP_WORKERS: "1",
        RATE_LIMIT_AUTH_PER_MINUTE: HIGH,
        RATE_LIMIT_SESSION_PER_MINUTE: HIGH,
        RATE_LIMIT_DEFAULT_PER_MINUTE: HIGH,
        ...mediaWorker()
      }
    }
    // One after the other: the first runs the migrations on the fresh database.
    const service = (name: string) =>
      make(async () => {
        const started = await startService(env(name))
        services.push(started)
        return started
      })
    const a = await service("a")
    await ready(a, "A")
    const b = await service("b")
    await ready(b, "B")
    return { fake, a, b, redis, prefix, close }
  } catch (error) {
    await close()
    throw error
  }
}
