// The statements the service runs per session start and stop (src/layers/SessionStore.ts `create`
// and `transition`), for the control-plane baseline and the bare INSERT + SET figure.
import type { SqlClient } from "effect/sql/SqlClient"

/** What the service stores for `POST /api/session` with an empty body (defaults, ENABLE_AIC on, 300 s idle timeout). */
export const defaultConfig = {
  sampleRate: 16000,
  channels: 1,
  encoding: "s16le",
  language: "en-US",
  asr: {},
  aic: true,
  idleTimeoutSeconds: 300
}

/** SessionStore.create: the sessions row and its creation event in one statement. */
export const insertSession = (sql: SqlClient, userId: string, deviceId: string, actor: string) =>
  sql<{ id: string }>`
    WITH created AS (
      INSERT INTO sessions (user_id, device_id, state, config, expires_at)
      VALUES (${userId}, ${deviceId}, 'pending', ${JSON.stringify(defaultConfig)}::jsonb, now() + make_interval(secs => ${defaultConfig.idleTimeoutSeconds}))
      RETURNING *
    ), logged AS (
      INSERT INTO session_events (session_id, from_state, to_state, actor, reason)
      SELECT id, NULL, 'pending', ${actor}, ${"start"} FROM created
    )
    SELECT * FROM created`

/** SessionStore.transition(id, "completed"): lock, guarded UPDATE, event, in one statement. */
export const completeSession = (sql: SqlClient, id: string, actor: string) => {
  const to = "completed"
  return sql<{ id: string }>`
    WITH old AS (
      SELECT id, state FROM sessions WHERE id = ${id} FOR UPDATE
    ), moved AS (
      UPDATE sessions s SET
        state = ${to},
        started_at = CASE WHEN ${to} = 'active' THEN now() ELSE s.started_at END,
        ended_at = CASE WHEN ${to} IN ('completed', 'error', 'expired') THEN now() ELSE s.ended_at END,
        error = COALESCE(${null}::text, s.error),
        last_activity_at = now(),
        expires_at = now() + make_interval(secs => (s.config->>'idleTimeoutSeconds')::int)
      FROM old
      WHERE s.id = old.id AND old.state IN ${sql.in(["active"])}
      RETURNING s.*, old.state AS from_state
    ), logged AS (
      INSERT INTO session_events (session_id, from_state, to_state, actor, reason)
      SELECT id, from_state, ${to}, ${actor}, ${"stopped by client"} FROM moved
    )
    SELECT * FROM moved`
}
