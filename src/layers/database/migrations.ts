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
  }),
  "0002_devices_and_tokens": Effect.gen(function*() {
    const sql = yield* SqlClient
    yield* sql`
      CREATE TABLE devices (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id text NOT NULL,
        name text NULL,
        secret_hash text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz NULL
      )
    `
    yield* sql`CREATE INDEX devices_user_id ON devices (user_id)`
    // Refresh tokens: only the SHA-256 of the opaque token is kept; one family per token grant.
    yield* sql`
      CREATE TABLE refresh_tokens (
        token_hash text PRIMARY KEY,
        family_id uuid NOT NULL,
        device_id uuid NOT NULL REFERENCES devices (id),
        user_id text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        used_at timestamptz NULL,
        revoked_at timestamptz NULL
      )
    `
    yield* sql`CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id)`
    yield* sql`CREATE INDEX refresh_tokens_device_id ON refresh_tokens (device_id)`
  })
}

/** Runs the pending migrations; returns the ones applied now. No schema dump, so only SqlClient is needed. */
export const runMigrations = Migrator.make({})({
  loader: Migrator.fromRecord(migrations),
  table: MIGRATIONS_TABLE
})
