import { Duration, Effect } from "effect"
import type { SqlClient } from "effect/sql/SqlClient"

/** The pool's connections at one moment; `waiting` (checkouts queued for a connection) is not observable: @effect/sql-pg keeps its pool internal. */
export interface PoolReading {
  readonly max: number
  readonly total: number
  readonly active: number
  readonly idle: number
  readonly waiting: null
}

/** A reading that gets no connection within this found every connection in use. */
const READ_TIMEOUT = Duration.seconds(1)

/**
 * Reads the pool through the pool: Postgres lists this pool's connections (by their
 * application_name) in pg_stat_activity, the reading's own connection counted as idle; the
 * embedded server has a pool of one, idle when the reading gets it. No connection within
 * READ_TIMEOUT: every connection is in use.
 */
export const readPool = (
  sql: SqlClient,
  options: { readonly max: number; readonly applicationName: string | undefined }
): Effect.Effect<PoolReading, unknown> => {
  const busy: PoolReading = { max: options.max, total: options.max, active: options.max, idle: 0, waiting: null }
  const applicationName = options.applicationName
  const read = applicationName === undefined
    ? Effect.as(sql`SELECT 1`, { max: 1, total: 1, active: 0, idle: 1, waiting: null })
    : Effect.map(
      sql<{ total: number; busy: number }>`
        SELECT count(*)::int AS total, count(*) FILTER (WHERE state IS DISTINCT FROM 'idle')::int AS busy
        FROM pg_stat_activity WHERE application_name = ${applicationName}`,
      (rows): PoolReading => {
        const total = rows[0]?.total ?? 0
        // Minus the reading's own connection, which would be idle without it.
        const active = Math.max(0, (rows[0]?.busy ?? 0) - 1)
        return { max: options.max, total, active, idle: total - active, waiting: null }
      }
    )
  return read.pipe(Effect.timeoutOrElse({ duration: READ_TIMEOUT, orElse: () => Effect.succeed(busy) }))
}
