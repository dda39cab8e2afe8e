import * as PgClient from "@effect/sql-pg/PgClient"
import { Context, Duration, Effect, Layer, Option, Redacted, Ref, Schedule, Scope } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import { SqlClient } from "effect/sql/SqlClient"
import { randomUUID } from "node:crypto"
import { join } from "node:path"
import { Gauge } from "prom-client"
import type { Settings } from "../config/settings.ts"
import { AppConfig } from "./Config.ts"
import { embeddedServer } from "./database/embedded.ts"
import { type DatabaseError, DatabaseStartFailed, DatabaseUnreachable, describe, redactUrl } from "./database/errors.ts"
import { MIGRATIONS_TABLE, runMigrations } from "./database/migrations.ts"
import { type PoolReading, readPool } from "./database/pool.ts"
import { Health } from "./Health.ts"
import { Metrics } from "./Metrics.ts"

export { type DatabaseError, DatabaseStartFailed, DatabaseUnreachable, redactUrl } from "./database/errors.ts"
export { MIGRATIONS_TABLE, migrations } from "./database/migrations.ts"

export type DatabaseBackend = "postgres" | "embedded-pglite"

export type { PoolReading } from "./database/pool.ts"

/** What the `/status` "database" section shows besides the pool. */
export interface DatabaseStats {
  readonly backend: DatabaseBackend
  readonly poolMax: number
  readonly migrations: { readonly applied: number; readonly latest: string | null }
}

/** First retry delay and the cap of the exponential connect backoff (jittered ±20 %). */
const RETRY_BASE = Duration.millis(200)
const RETRY_CAP = Duration.seconds(5)

const connectSchedule = (retries: number) =>
  Schedule.exponential(RETRY_BASE).pipe(
    Schedule.jittered,
    Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, RETRY_CAP))),
    Schedule.upTo({ times: retries })
  )

interface Target {
  readonly backend: DatabaseBackend
  /** Safe to log: the URL without its password, or the PGlite data directory. */
  readonly display: string
  /** The password (as written and decoded), scrubbed from every message we log or return. */
  readonly secrets: ReadonlyArray<string>
  readonly options: PgClient.PgPoolConfig
  /** Names this pool's connections in pg_stat_activity (Postgres only), for the pool reading. */
  readonly applicationName: string | undefined
}

type DatabaseSettings = Settings["database"]

const timeouts = (db: DatabaseSettings) => ({
  connectTimeout: Duration.millis(db.connectTimeoutMs),
  idleTimeout: Duration.millis(db.idleTimeoutMs)
})

const decoded = (text: string): string => {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}

const externalTarget = (url: Redacted.Redacted<string>, db: DatabaseSettings): Target => {
  const raw = Redacted.value(url)
  const parsed = URL.canParse(raw) ? new URL(raw) : undefined
  const written = parsed?.password ?? ""
  // host/port/database only label the SQL spans (sql-pg defaults them to localhost/postgres); the URL wins for connecting.
  const labels = parsed === undefined ? {} : {
    host: parsed.hostname,
    port: parsed.port === "" ? 5432 : Number(parsed.port),
    database: decodeURIComponent(parsed.pathname.slice(1)) || "postgres"
  }
  // Unique per start: pg_stat_activity then lists exactly this pool's connections.
  const applicationName = `auralink-ingress-egress/${randomUUID().slice(0, 8)}`
  return {
    backend: "postgres",
    display: redactUrl(raw),
    secrets: [written, decoded(written)],
    options: { url, ...labels, applicationName, minConnections: db.poolMin, maxConnections: db.poolMax, ...timeouts(db) },
    applicationName
  }
}

/** The embedded server and PGlite live in the caller's scope, so they close after the pool. */
const embeddedTarget = (dataDir: string, db: DatabaseSettings) =>
  Effect.map(embeddedServer(join(dataDir, "pglite")), (server): Target => ({
    backend: "embedded-pglite",
    display: join(dataDir, "pglite"),
    secrets: [],
    applicationName: undefined,
    // The socket server serves one connection at a time: a fixed pool of one.
    options: { host: server.host, port: server.port, username: "postgres", database: "postgres", minConnections: 1, maxConnections: 1, ...timeouts(db) }
  }))

/** `SELECT 1` until it answers: 1 + `retries` attempts, one warning per failed attempt. */
const connect = (sql: SqlClient, target: Target, retries: number) =>
  Effect.gen(function*() {
    const attempts = yield* Ref.make(0)
    yield* sql`SELECT 1`.pipe(
      Effect.tapError((error) =>
        Ref.updateAndGet(attempts, (n) => n + 1).pipe(
          Effect.flatMap((attempt) =>
            Effect.logWarning("database connect attempt failed").pipe(
              Effect.annotateLogs({ target: target.display, attempt, maxAttempts: retries + 1, error: describe(error, target.secrets) })
            )
          )
        )
      ),
      Effect.retry(connectSchedule(retries)),
      Effect.catch((error) =>
        Effect.flatMap(Ref.get(attempts), (n) =>
          Effect.fail(new DatabaseUnreachable({ target: target.display, attempts: n, reason: describe(error, target.secrets) })))
      )
    )
  })

const migrate = (sql: SqlClient, target: Target) =>
  Effect.gen(function*() {
    const ran = yield* runMigrations.pipe(Effect.provideService(SqlClient, sql))
    if (ran.length > 0) yield* Effect.logInfo(`database migrations applied: ${ran.map(([id, name]) => `${id}_${name}`).join(", ")}`)
    const rows = yield* sql<{ migration_id: number; name: string }>`
      SELECT migration_id, name FROM ${sql(MIGRATIONS_TABLE)} ORDER BY migration_id`
    const last = rows.at(-1)
    return { applied: rows.length, latest: last === undefined ? null : `${String(last.migration_id).padStart(4, "0")}_${last.name}` }
  }).pipe(
    Effect.mapError((error) => new DatabaseStartFailed({ stage: "migrations", target: target.display, reason: describe(error, target.secrets) }))
  )

/** A row per start in service_instances; closing the scope sets its stopped_at. */
const recordInstance = (sql: SqlClient, target: Target, service: Settings["service"]) =>
  Effect.acquireRelease(
    sql<{ id: string }>`
      INSERT INTO service_instances (bridge_id, version, environment)
      VALUES (${service.bridgeId}, ${service.version}, ${service.environment})
      RETURNING id`.pipe(
      Effect.flatMap((rows) =>
        Option.match(Option.fromNullishOr(rows[0]), {
          onNone: () => Effect.fail(new Error("INSERT returned no row")),
          onSome: (row) => Effect.succeed(row.id)
        })
      ),
      Effect.mapError((error) => new DatabaseStartFailed({ stage: "instance", target: target.display, reason: describe(error, target.secrets) }))
    ),
    (id) =>
      sql`UPDATE service_instances SET stopped_at = now() WHERE id = ${id}`.pipe(
        Effect.catch((error) => Effect.logWarning(`could not mark service instance stopped: ${describe(error, target.secrets)}`)),
        Effect.asVoid
      )
  )

/** `auralink_db_connections_{active,idle}` (the seed's names) and `_max` (the pool's size, for "pool exhausted"), read from the pool at scrape time. */
const poolGauges = (pool: Effect.Effect<PoolReading, string>) =>
  Effect.gen(function*() {
    const { registry } = yield* Metrics
    const services = yield* Effect.context<never>()
    // One reading serves both gauges of a scrape.
    let pending: Promise<PoolReading | undefined> | undefined
    const reading = () => {
      pending ??= Effect.runPromiseWith(services)(Effect.option(pool)).then((r) => r._tag === "Some" ? r.value : undefined).finally(() => {
        pending = undefined
      })
      return pending
    }
    for (const [field, help] of [["active", "in use"], ["idle", "open and idle"], ["max", "allowed at most (the pool's size)"]] as const) {
      new Gauge({
        name: `auralink_db_connections_${field}`,
        help: `Postgres pool connections ${help} (read at scrape time)`,
        registers: [registry],
        async collect() {
          const r = await reading()
          if (r !== undefined) this.set(r[field])
        }
      })
    }
  })

const make = Effect.gen(function*() {
  const { database, service } = yield* AppConfig
  const health = yield* Health
  const target = Option.isSome(database.url)
    ? externalTarget(database.url.value, database)
    : yield* embeddedTarget(service.dataDir, database)
  yield* Effect.logInfo(`database backend: ${target.backend === "postgres" ? "postgres" : "embedded PGlite"} (${target.display})`)

  // The pool gets its own child scope, closed after the instance row's release: a statement run
  // while the pool's own scope is closing hangs whenever it needs a new connection.
  const poolScope = yield* Scope.fork(yield* Scope.Scope)
  const pg = yield* PgClient.make(target.options).pipe(
    Scope.provide(poolScope),
    Effect.mapError((error) => new DatabaseStartFailed({ stage: "client", target: target.display, reason: describe(error, target.secrets) }))
  )
  yield* connect(pg, target, database.connectRetries)
  const migrations = yield* migrate(pg, target)
  const instanceId = yield* recordInstance(pg, target, service)

  const stats: DatabaseStats = { backend: target.backend, poolMax: target.options.maxConnections ?? 1, migrations }
  // A string error: Health shows it as is, with the driver's reason rather than only the top message.
  const check = pg`SELECT 1`.pipe(Effect.asVoid, Effect.mapError((error) => describe(error, target.secrets)))
  yield* health.register({ name: "postgres", critical: true, check })
  const pool = readPool(pg, { max: stats.poolMax, applicationName: target.applicationName }).pipe(
    Effect.mapError((error) => describe(error, target.secrets))
  )
  yield* health.section(
    "database",
    Effect.map(
      Effect.result(pool),
      (reading) => ({ ...stats, pool: reading._tag === "Success" ? reading.success : { max: stats.poolMax, error: reading.failure } })
    )
  )
  yield* poolGauges(pool)

  const db: Database["Service"] = { backend: target.backend, target: target.display, instanceId, stats }
  return Context.make(Database, db).pipe(Context.add(SqlClient, pg), Context.add(PgClient.PgClient, pg))
})

/**
 * Postgres for the service: a pooled `@effect/sql-pg` client on DATABASE_URL, or, with no URL,
 * on an embedded PGlite served over a local socket. Connects with retries, migrates, records
 * this start in service_instances and registers the "postgres" readiness check.
 */
export class Database extends Context.Service<Database, {
  readonly backend: DatabaseBackend
  /** Where it connects, safe to log. */
  readonly target: string
  /** This start's row in service_instances. */
  readonly instanceId: string
  readonly stats: DatabaseStats
}>()("auralink/Database") {
  static readonly layer: Layer.Layer<Database | SqlClient | PgClient.PgClient, DatabaseError, AppConfig | Health | Metrics> = Layer.effectContext(make).pipe(
    Layer.provide(Reactivity.layer)
  )
}
