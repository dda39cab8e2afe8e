import * as PgClient from "@effect/sql-pg/PgClient"
import { Effect, Redacted, type Scope } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import { randomBytes } from "node:crypto"

/** The real server the integration tests use (trust auth); override with TEST_POSTGRES_ADMIN_URL. */
export const ADMIN_URL = process.env["TEST_POSTGRES_ADMIN_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"

/** Runs one statement on the admin database over a short-lived connection. */
const admin = (statement: string): Effect.Effect<void> =>
  PgClient.makeClient({ url: Redacted.make(ADMIN_URL) }).pipe(
    Effect.flatMap((sql) => sql.unsafe(statement)),
    Effect.scoped,
    Effect.provide(Reactivity.layer),
    Effect.asVoid,
    Effect.orDie
  )

const nameOf = (url: string): string => decodeURIComponent(new URL(url).pathname.slice(1))
const quoted = (name: string): string => `"${name.replaceAll("\"", "\"\"")}"`

/** Drops the database a URL names, closing its open connections first; no error if it is gone. */
export const dropDatabase = (url: string): Effect.Effect<void> => admin(`DROP DATABASE IF EXISTS ${quoted(nameOf(url))} WITH (FORCE)`)

/**
 * A new, empty, uniquely named database on the real server for the current scope; yields its
 * URL and drops it when the scope closes.
 */
export const freshDatabase: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.gen(function*() {
    const name = `auralink_test_${randomBytes(6).toString("hex")}`
    yield* admin(`CREATE DATABASE ${quoted(name)}`)
    const url = new URL(ADMIN_URL)
    url.pathname = `/${name}`
    return url.toString()
  }),
  dropDatabase
)

/** The rows of one read on the database `url` names, over a short-lived connection. */
export const queryRows = (url: string, statement: string): Promise<ReadonlyArray<Record<string, unknown>>> =>
  PgClient.makeClient({ url: Redacted.make(url) }).pipe(
    Effect.flatMap((sql) => sql.unsafe<Record<string, unknown>>(statement)),
    Effect.scoped,
    Effect.provide(Reactivity.layer),
    Effect.orDie,
    Effect.runPromise
  )
