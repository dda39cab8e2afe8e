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
  }),
  "0003_sessions": Effect.gen(function*() {
    const sql = yield* SqlClient
    // expires_at = last_activity_at + the config's idle timeout, kept current on every write, so the
    // sweeper's "due" query is one indexed range scan. Timestamps are ms-precise (cursor round-trip).
    yield* sql`
      CREATE TABLE sessions (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        user_id text NOT NULL,
        device_id text NOT NULL,
        state text NOT NULL CHECK (state IN ('pending', 'active', 'completed', 'error', 'expired')),
        config jsonb NOT NULL,
        context jsonb NOT NULL DEFAULT '[]',
        created_at timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
        started_at timestamptz NULL,
        ended_at timestamptz NULL,
        expires_at timestamptz NOT NULL,
        last_activity_at timestamptz NOT NULL DEFAULT now(),
        error text NULL
      )
    `
    yield* sql`CREATE INDEX sessions_user_recent ON sessions (user_id, created_at DESC, id DESC)`
    yield* sql`CREATE INDEX sessions_recent ON sessions (created_at DESC, id DESC)`
    yield* sql`CREATE INDEX sessions_open_expiry ON sessions (expires_at) WHERE state IN ('pending', 'active')`
    // Append-only: one row per transition (from_state NULL for the creation).
    yield* sql`
      CREATE TABLE session_events (
        id bigserial PRIMARY KEY,
        session_id uuid NOT NULL REFERENCES sessions (id),
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        from_state text NULL,
        to_state text NOT NULL,
        actor text NOT NULL,
        reason text NOT NULL
      )
    `
    yield* sql`CREATE INDEX session_events_session ON session_events (session_id, id)`
  }),
  "0004_session_owner": Effect.gen(function*() {
    const sql = yield* SqlClient
    // The instance whose media server holds the session (its Instance id); NULL for sessions made before.
    yield* sql`ALTER TABLE sessions ADD COLUMN instance_id text NULL`
    // Admission counts an instance's open sessions; a lost instance's are found by it.
    yield* sql`CREATE INDEX sessions_open_instance ON sessions (instance_id) WHERE state IN ('pending', 'active')`
  })
}

/** Runs the pending migrations; returns the ones applied now. No schema dump, so only SqlClient is needed. */
export const runMigrations = Migrator.make({})({
  loader: Migrator.fromRecord(migrations),
  table: MIGRATIONS_TABLE
})
