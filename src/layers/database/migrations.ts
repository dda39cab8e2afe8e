import { Effect } from "effect"
import * as Migrator from "effect/sql/Migrator"
import { SqlClient } from "effect/sql/SqlClient"

/** Migrator's bookkeeping table (its default name, spelled out so stats and tests can read it). */
export const MIGRATIONS_TABLE = "effect_sql_migrations"

/**
 * Every schema change, in order, keyed `<id>_<name>`; applied ids are recorded in
 * MIGRATIONS_TABLE and never run again. Append new entries; never edit an applied one.
 */
export const migrations: Record<string, Effect.Effect<void, unknown, SqlClient>> = {
  "0001_service_instances": Effect.gen(function*() {
    const sql = yield* SqlClient
    // gen_random_uuid() is core since Postgres 13; PGlite (Postgres 17) has it too.
    yield* sql`
      CREATE TABLE service_instances (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        bridge_id text NOT NULL,
        version text NOT NULL,
        environment text NOT NULL,
        started_at timestamptz NOT NULL DEFAULT now(),
        stopped_at timestamptz NULL
      )
    `
  })
}

/** Runs the pending migrations; returns the ones applied now. No schema dump, so only SqlClient is needed. */
export const runMigrations = Migrator.make({})({
  loader: Migrator.fromRecord(migrations),
  table: MIGRATIONS_TABLE
})
