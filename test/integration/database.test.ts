import * as PgClient from "@effect/sql-pg/PgClient"
import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Logger, Redacted, References, Scope, Tracer } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import { SqlClient } from "effect/sql/SqlClient"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { RawConfig } from "../../src/config/source.ts"
import { AppConfig } from "../../src/layers/Config.ts"
import { Database, type DatabaseStats, MIGRATIONS_TABLE, migrations, type PoolReading } from "../../src/layers/Database.ts"
import { Health } from "../../src/layers/Health.ts"
import { Metrics } from "../../src/layers/Metrics.ts"
import { dropDatabase, freshDatabase } from "../support/postgres.ts"

interface LogLine {
  readonly level: string
  readonly text: string
}

/** Records every log line (message and annotations as one string) instead of printing it. */
const captureLogs = (lines: Array<LogLine>) =>
  Logger.layer([
    Logger.make(({ fiber, logLevel, message }) => {
      const annotations = fiber.getRef(References.CurrentLogAnnotations)
      lines.push({ level: logLevel, text: JSON.stringify({ message, annotations }) })
    })
  ])

const stack = (raw: RawConfig) => Database.layer.pipe(Layer.provideMerge(Layer.mergeAll(Health.layer, Metrics.layer)), Layer.provide(AppConfig.layerFrom(raw)))

/** Starts the layer in a child scope of the test, so a test can stop it (and start it again) midway. */
const start = (raw: RawConfig, logs: Array<LogLine> = []) =>
  Effect.gen(function*() {
    const scope = yield* Scope.fork(yield* Scope.Scope)
    const context = yield* Layer.buildWithScope(stack(raw), scope).pipe(Effect.provide(captureLogs(logs)))
    return {
      sql: Context.get(context, SqlClient),
      db: Context.get(context, Database),
      health: Context.get(context, Health),
      registry: Context.get(context, Metrics).registry,
      stop: Scope.close(scope, Exit.void)
    }
  })

/** A separate client, to look at the database while (or after) the layer runs. */
const inspect = <A, E>(url: string, f: (sql: SqlClient) => Effect.Effect<A, E>) =>
  PgClient.makeClient({ url: Redacted.make(url) }).pipe(
    Effect.flatMap(f),
    Effect.scoped,
    Effect.provide(Reactivity.layer)
  )

const postgresStatus = (health: Health["Service"]) => Effect.map(health.readiness, (r) => r.dependencies["postgres"])

const migrationRows = (sql: SqlClient) =>
  sql<{ migration_id: number; name: string }>`SELECT migration_id, name FROM ${sql(MIGRATIONS_TABLE)} ORDER BY migration_id`

const instanceRows = (sql: SqlClient) =>
  sql<{ id: string; bridge_id: string; stopped_at: Date | null }>`
    SELECT id, bridge_id, stopped_at FROM service_instances ORDER BY started_at`

const migrationLogs = (logs: ReadonlyArray<LogLine>) => logs.filter((l) => l.text.includes("database migrations applied"))

/** The checks shared by both backends, on a running layer. */
const checkRunning = (running: Effect.Success<ReturnType<typeof start>>, backend: DatabaseStats["backend"], poolMax: number) =>
  Effect.gen(function*() {
    const { db, health, sql } = running
    const tables = yield* sql<{ found: string | null }>`SELECT to_regclass('service_instances')::text AS found`
    expect(tables[0]?.found).toBe("service_instances")
    const ids = Object.keys(migrations)
    expect(yield* migrationRows(sql)).toEqual(ids.map((id) => ({ migration_id: Number(id.slice(0, 4)), name: id.slice(5) })))
    expect((yield* postgresStatus(health))?.status).toBe("up")
    // Nothing else runs but the readiness probe's own query, which may be in flight at a given reading.
    const idleReading = Effect.map(health.sections, (all) => ({ all, active: Object(Object(all["database"]).pool).active }))
    let reading = yield* idleReading
    for (let tries = 0; reading.active !== 0 && tries < 40; tries++) {
      yield* Effect.sleep("25 millis")
      reading = yield* idleReading
    }
    const sections = reading.all
    expect(sections["database"]).toEqual({
      backend,
      poolMax,
      migrations: { applied: ids.length, latest: ids.at(-1) },
      // Nothing else runs: every open connection is idle (the reading's own included).
      pool: { max: poolMax, total: expect.any(Number), active: 0, idle: expect.any(Number), waiting: null }
    })
    const { total, idle } = Object(Object(sections["database"]).pool)
    expect(total).toBeGreaterThanOrEqual(1)
    expect(idle).toBe(total)
    const mine = (yield* instanceRows(sql)).find((r) => r.id === db.instanceId)
    expect(mine).toMatchObject({ bridge_id: "bridge-test", stopped_at: null })
  })

describe("Database on a real Postgres", () => {
  it.live("migrates, is ready, records the start and the stop; a second start does not migrate again", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabase
      const config = { DATABASE_URL: url, BRIDGE_ID: "bridge-test" }
      const firstLogs: Array<LogLine> = []
      const first = yield* start(config, firstLogs)
      expect(first.db.backend).toBe("postgres")
      yield* checkRunning(first, "postgres", 20)
      expect(firstLogs.some((l) => l.level === "Info" && l.text.includes("database backend: postgres (postgres://postgres@127.0.0.1:5432/auralink_test_")))
        .toBe(true)
      expect(migrationLogs(firstLogs)).toHaveLength(1)
      const spans: Array<string> = []
      const recording = Tracer.make({
        span: (options) => {
          spans.push(options.name)
          return Tracer.nativeTracer.span(options)
        }
      })
      yield* first.sql`SELECT 1`.pipe(Effect.withTracer(recording))
      expect(spans).toHaveLength(1) // every statement is traced
      yield* first.stop

      const afterStop = yield* inspect(url, instanceRows)
      expect(afterStop).toHaveLength(1)
      expect(afterStop[0]?.stopped_at).toBeInstanceOf(Date)

      const secondLogs: Array<LogLine> = []
      const second = yield* start(config, secondLogs)
      yield* checkRunning(second, "postgres", 20)
      expect(migrationLogs(secondLogs)).toHaveLength(0)
      expect(second.db.instanceId).not.toBe(first.db.instanceId)
      expect((yield* instanceRows(second.sql)).map((r) => r.stopped_at === null)).toEqual([false, true])
      yield* second.stop
    }))

  it.live("readiness turns down when the database goes away", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabase
      const logs: Array<LogLine> = []
      const running = yield* start({ DATABASE_URL: url, PGPOOL_MIN_INGRESS: "1", PGPOOL_MAX_INGRESS: "2" }, logs)
      expect((yield* postgresStatus(running.health))?.status).toBe("up")
      yield* dropDatabase(url)
      const down = yield* postgresStatus(running.health)
      expect(down?.status).toBe("down")
      expect(down?.critical).toBe(true)
      expect(down?.lastError).toContain("does not exist")
      expect((yield* running.health.readiness).ready).toBe(false)
      // Shutdown still completes: marking the instance stopped fails and is logged, not hung on.
      yield* running.stop
      expect(logs.some((l) => l.level === "Warn" && l.text.includes("could not mark service instance stopped") && l.text.includes("does not exist"))).toBe(true)
    }))

  it.live("an unreachable server fails after 1 + PG_CONNECT_RETRIES attempts, without the password", () =>
    Effect.gen(function*() {
      const password = "s3cret-Pa55word"
      const logs: Array<LogLine> = []
      const error = yield* Effect.flip(start({ DATABASE_URL: `postgresql://postgres:${password}@127.0.0.1:1/test`, PG_CONNECT_RETRIES: "2" }, logs))
      expect(error._tag).toBe("DatabaseUnreachable")
      if (error._tag !== "DatabaseUnreachable") return
      expect(error.attempts).toBe(3)
      expect(error.target).toBe("postgresql://postgres:***@127.0.0.1:1/test")
      const warnings = logs.filter((l) => l.level === "Warn" && l.text.includes("database connect attempt failed"))
      expect(warnings).toHaveLength(3)
      expect(warnings.map((w) => JSON.parse(w.text).annotations.attempt)).toEqual([1, 2, 3])
      const everything = [error.message, JSON.stringify(error), ...logs.map((l) => l.text)].join("\n")
      expect(everything).not.toContain(password)
      expect(everything).toContain("postgresql://postgres:***@127.0.0.1:1/test")
    }))
})

/** The pool while a transaction holds one connection, then after it ends; and the two gauges at those moments. */
const checkPoolInUse = (running: Effect.Success<ReturnType<typeof start>>, busy: PoolReading) =>
  Effect.gen(function*() {
    const { health, registry, sql } = running
    const database = Effect.map(health.sections, (s) => s["database"])
    const gauges = Effect.promise(async () => {
      const text = await registry.metrics()
      return text.split("\n").filter((l) => l.startsWith("auralink_db_connections_"))
    })
    const held = yield* Deferred.make<void>()
    const entered = yield* Deferred.make<void>()
    const holder = yield* Effect.forkChild(
      sql.withTransaction(sql`SELECT 1`.pipe(Effect.andThen(Deferred.succeed(entered, undefined)), Effect.andThen(Deferred.await(held))))
    )
    yield* Deferred.await(entered)
    expect(yield* database).toMatchObject({ pool: busy })
    expect(yield* gauges).toEqual([
      `auralink_db_connections_active ${busy.active}`,
      `auralink_db_connections_idle ${busy.idle}`,
      `auralink_db_connections_max ${busy.max}`
    ])
    yield* Deferred.succeed(held, undefined)
    yield* Fiber.join(holder)
    expect(yield* database).toMatchObject({ pool: { active: 0, waiting: null } })
  })

describe("Database pool readings", () => {
  it.live("Postgres: a transaction in progress is an active connection, in /status and in the gauges", () =>
    Effect.gen(function*() {
      const url = yield* freshDatabase
      const running = yield* start({ DATABASE_URL: url, PGPOOL_MIN_INGRESS: "1", PGPOOL_MAX_INGRESS: "4" })
      yield* checkPoolInUse(running, { max: 4, total: 2, active: 1, idle: 1, waiting: null })
      yield* running.stop
    }))

  it.live("embedded PGlite: the one connection held reads as busy (no connection within 1 s)", () =>
    Effect.gen(function*() {
      const dataDir = yield* Effect.acquireRelease(
        Effect.promise(() => mkdtemp(join(tmpdir(), "auralink-db-"))),
        (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
      )
      const running = yield* start({ DATA_DIR: dataDir })
      yield* checkPoolInUse(running, { max: 1, total: 1, active: 1, idle: 0, waiting: null })
      yield* running.stop
    }), 60_000)
})

describe("Database on embedded PGlite", () => {
  it.live("migrates, is ready, and keeps its data across two starts on the same data directory", () =>
    Effect.gen(function*() {
      const dataDir = yield* Effect.acquireRelease(
        Effect.promise(() => mkdtemp(join(tmpdir(), "auralink-db-"))),
        (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true }))
      )
      const config = { DATA_DIR: dataDir, BRIDGE_ID: "bridge-test" }
      const firstLogs: Array<LogLine> = []
      const first = yield* start(config, firstLogs)
      expect(first.db.backend).toBe("embedded-pglite")
      yield* checkRunning(first, "embedded-pglite", 1)
      expect(firstLogs.some((l) => l.text.includes(`database backend: embedded PGlite (${join(dataDir, "pglite")})`))).toBe(true)
      expect(migrationLogs(firstLogs)).toHaveLength(1)
      yield* first.stop

      const secondLogs: Array<LogLine> = []
      const second = yield* start(config, secondLogs)
      yield* checkRunning(second, "embedded-pglite", 1)
      expect(migrationLogs(secondLogs)).toHaveLength(0)
      const rows = yield* instanceRows(second.sql)
      expect(rows.map((r) => r.id)).toEqual([first.db.instanceId, second.db.instanceId])
      expect(rows[0]?.stopped_at).toBeInstanceOf(Date)
      expect(rows[1]?.stopped_at).toBeNull()
      yield* second.stop
    }), 60_000)
})
