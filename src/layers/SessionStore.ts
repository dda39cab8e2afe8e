import { Context, Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import type { Fragment } from "effect/sql/Statement"
import {
  type AppendContext,
  type ContextEntry,
  illegalTransition,
  type IllegalTransition,
  isTerminal,
  openStates,
  type Session,
  sessionClosed,
  type SessionClosed,
  type SessionConfig,
  type SessionConfigPatch,
  sessionNotFound,
  type SessionNotFound,
  type SessionState,
  sourcesOf
} from "../schemas/session.ts"
import { DeviceId, SessionId } from "../schemas/ids.ts"
import { limitReached, type LimitReached } from "../schemas/limits.ts"
import { InstanceFull } from "../schemas/cluster.ts"
import { AppConfig } from "./Config.ts"
import { makeSessionCache } from "./sessions/cache.ts"

interface SessionRow {
  readonly id: string
  readonly user_id: string
  readonly device_id: string
  readonly state: SessionState
  readonly config: SessionConfig
  readonly context: ReadonlyArray<ContextEntry>
  readonly created_at: Date
  readonly started_at: Date | null
  readonly ended_at: Date | null
  readonly expires_at: Date
  readonly last_activity_at: Date
  readonly error: string | null
  readonly instance_id: string | null
}

const iso = (d: Date) => d.toISOString()
const toSession = (r: SessionRow): Session => ({
  id: SessionId.make(r.id),
  userId: r.user_id,
  deviceId: DeviceId.make(r.device_id),
  state: r.state,
  config: r.config,
  context: r.context,
  createdAt: iso(r.created_at),
  startedAt: r.started_at === null ? null : iso(r.started_at),
  endedAt: r.ended_at === null ? null : iso(r.ended_at),
  expiresAt: iso(r.expires_at),
  lastActivityAt: iso(r.last_activity_at),
  error: r.error
})

export interface SessionEventRow {
  readonly id: string
  readonly sessionId: SessionId
  readonly at: string
  readonly from: SessionState | null
  readonly to: SessionState
  readonly actor: string
  readonly reason: string
}

/** Who asked for a change, and why (both land in session_events). */
export interface Cause {
  readonly actor: string
  readonly reason: string
}

/** Caps on the open sessions of the new session's user and device (checked under a per-user lock). */
export interface SessionCaps {
  readonly pendingPerUser: number
  readonly pendingPerDevice: number
  readonly openPerUser: number
  readonly openPerDevice: number
}

/** The instance whose media server will hold the session, and how many open sessions it may own. */
export interface SessionOwner {
  readonly instance: string
  readonly capacity: number
}

/** A committed transition: the session after it and the state it left. */
export interface Transitioned {
  readonly session: Session
  readonly from: SessionState
}

export interface ListFilter {
  /** None: every user's sessions (operators). */
  readonly userId: Option.Option<string>
  readonly state: Option.Option<SessionState>
  /** Only sessions strictly older than this (created_at, id) position. */
  readonly after: Option.Option<{ readonly createdAt: Date; readonly id: string }>
  readonly limit: number
}

/**
 * Sessions in Postgres (`sessions` + append-only `session_events`) behind a small read cache.
 * Every write is one transaction whose UPDATE is guarded by the expected state, so concurrent
 * writers cannot both win; the cache entry is dropped after every write of this process.
 */
export class Sessions extends Context.Service<Sessions, {
  /**
   * A pending session; with `caps`, refused (LimitReached) when its user or device already holds as
   * many; with `owner`, recorded as that instance's and refused (InstanceFull) when it owns `capacity` open sessions.
   */
  readonly create: (
    input:
      & { readonly userId: string; readonly deviceId: string; readonly config: SessionConfig; readonly caps?: SessionCaps; readonly owner?: SessionOwner }
      & Cause
  ) => Effect.Effect<Session, SqlError | LimitReached | InstanceFull>
  /** The instance that owns an open session; None when the session is unknown, closed or has no owner. */
  readonly ownerOf: (id: SessionId) => Effect.Effect<Option.Option<string>, SqlError>
  /** How many open sessions the instance owns. */
  readonly countOwned: (instance: string) => Effect.Effect<number, SqlError>
  /** The instances (other than `alive`) that own open sessions. */
  readonly ownersOtherThan: (alive: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string>, SqlError>
  /** Moves up to `batch` open sessions of `instance` to `error`, skipping rows another transaction holds. */
  readonly failOwnedBy: (instance: string, batch: number, cause: Cause) => Effect.Effect<ReadonlyArray<Transitioned>, SqlError>
  /** Cached read; None for unknown ids (malformed ones are refused where they come in). */
  readonly find: (id: SessionId) => Effect.Effect<Option.Option<Session>, SqlError>
  /** The same read straight from Postgres (for watchers, which must not start from another instance's stale state). */
  readonly findFresh: (id: SessionId) => Effect.Effect<Option.Option<Session>, SqlError>
  /** The sessions of `ids` that exist, read straight from Postgres in one statement (for periodic jobs over many sessions). */
  readonly findMany: (ids: ReadonlyArray<SessionId>) => Effect.Effect<ReadonlyArray<Session>, SqlError>
  /** Moves the session to `to` if the state machine allows it from its current state; otherwise nothing changes. */
  /** `pendingReason`, when given, is the event's reason if the session was pending (decided under the row lock). */
  readonly transition: (
    id: SessionId,
    to: SessionState,
    cause: Cause & { readonly error?: string; readonly pendingReason?: string }
  ) => Effect.Effect<Transitioned, SessionNotFound | IllegalTransition | SqlError>
  /** Shallow-merges the patch into the config of an open session (and restarts its idle clock). */
  readonly updateConfig: (id: SessionId, patch: SessionConfigPatch) => Effect.Effect<Session, SessionNotFound | SessionClosed | SqlError>
  /** Appends to the context of an open session, keeping the newest `cap` entries. */
  readonly appendContext: (id: SessionId, entry: AppendContext, cap: number) => Effect.Effect<Session, SessionNotFound | SessionClosed | SqlError>
  /**
   * Appends entries to the contexts of several open sessions in one statement (in order per
   * session, keeping the newest `cap` of each); the ids that were open and got theirs.
   */
  readonly appendContextMany: (
    entries: ReadonlyArray<{ readonly id: SessionId; readonly entry: AppendContext }>,
    cap: number
  ) => Effect.Effect<ReadonlyArray<SessionId>, SqlError>
  /** Restarts the idle clock of an open session (media activity); false when it is not open. */
  readonly touch: (id: SessionId) => Effect.Effect<boolean, SqlError>
  /** Newest first; fetches `limit` rows. */
  readonly list: (filter: ListFilter) => Effect.Effect<ReadonlyArray<Session>, SqlError>
  /** Expires up to `batch` open sessions past `expires_at`, skipping rows another transaction holds. */
  readonly expireDue: (batch: number, cause: Cause) => Effect.Effect<ReadonlyArray<Transitioned>, SqlError>
  readonly counts: Effect.Effect<Record<SessionState, number>, SqlError>
  /** The rooms open (pending or active) sessions of any instance name. */
  readonly openRooms: Effect.Effect<ReadonlySet<string>, SqlError>
  /** Sessions this process started that it has not seen end (shutdown ends them; another instance may already have). */
  readonly openHere: Effect.Effect<ReadonlyArray<SessionId>>
  /** Whether this process started the session and has not seen it end. */
  readonly isOpenHere: (id: SessionId) => boolean
  readonly events: (id: SessionId) => Effect.Effect<ReadonlyArray<SessionEventRow>, SqlError>
}>()("auralink/sessions/Sessions") {
  static readonly layer = Layer.effect(
    Sessions,
    Effect.gen(function*() {
      const sql = yield* SqlClient
      const { limits, sessions: settings } = yield* AppConfig
      const pendingSeconds = limits.pendingSessionTimeoutSeconds
      const cache = makeSessionCache<Session>({ ttlMs: settings.cacheTtlMs, max: settings.cacheMax })
      const startedHere = new Set<SessionId>()
      const ended = (session: Session) => {
        if (isTerminal(session.state)) startedHere.delete(session.id)
      }

      const json = (value: unknown) => JSON.stringify(value)
      /** Runs a write and drops the cache entry after it, whatever the outcome. */
      const write = <A, E>(id: string, effect: Effect.Effect<A, E>) => Effect.ensuring(effect, cache.invalidate(id))
      const stateOf = (id: string) =>
        Effect.map(sql<{ state: SessionState }>`SELECT state FROM sessions WHERE id = ${id}`, (rows) => Option.fromNullishOr(rows[0]?.state))
      /** Why a guarded UPDATE matched no row: unknown id, or a state the change is not allowed from. */
      const refuse = <E>(id: string, onState: (state: SessionState) => E): Effect.Effect<never, E | SessionNotFound | SqlError> =>
        Effect.flatMap(stateOf(id), (state) => Effect.fail<E | SessionNotFound>(Option.isNone(state) ? sessionNotFound(id) : onState(state.value)))
      const single = (rows: ReadonlyArray<SessionRow>) => Option.map(Option.fromNullishOr(rows[0]), toSession)

      /** Rows a bulk UPDATE closed (sweeper, lost instance): as transitions, each forgotten here and dropped from the cache. */
      const closedInBulk = (rows: ReadonlyArray<SessionRow & { from_state: SessionState }>) =>
        Effect.forEach(rows, (r) => {
          const session = toSession(r)
          ended(session)
          return Effect.as(cache.invalidate(session.id), { session, from: r.from_state })
        })

      const load = (id: string) => Effect.map(sql<SessionRow>`SELECT * FROM sessions WHERE id = ${id}`, single)

      // A pending session expires PENDING_SESSION_TIMEOUT_SECONDS after creation (activity does not extend it);
      // once active, last activity + idle timeout.
      const nextExpiry = (idleSeconds: Fragment) =>
        sql`CASE WHEN state = 'pending'
          THEN LEAST(now() + make_interval(secs => ${idleSeconds}), created_at + make_interval(secs => ${pendingSeconds}))
          ELSE now() + make_interval(secs => ${idleSeconds}) END`
      const idleOfConfig = sql`(config->>'idleTimeoutSeconds')::int`
      /** A context entry as stored (its time, else `at`). */
      const contextItem = (entry: AppendContext, at: string) => ({ role: entry.role, text: entry.text, at: entry.at ?? at })
      /** The row's context with `items` (a jsonb array) appended, the newest `cap` kept (ordinality keeps the order). */
      const appendedContext = (items: Fragment, cap: number) =>
        sql`(
          SELECT COALESCE(jsonb_agg(e ORDER BY i), '[]'::jsonb)
          FROM jsonb_array_elements(context || ${items}) WITH ORDINALITY AS t(e, i)
          WHERE i > jsonb_array_length(context || ${items}) - ${cap}
        )`

      /** Refuses when the user or device already holds `caps` open sessions (due ones the sweeper has not reached yet do not count). */
      const checkCaps = (userId: string, deviceId: string, caps: SessionCaps) =>
        Effect.gen(function*() {
          yield* sql`SELECT pg_advisory_xact_lock(hashtext(${`sessions:${userId}`}))`
          const rows = yield* sql<{ pending_user: number; open_user: number; pending_device: number; open_device: number }>`
            SELECT count(*) FILTER (WHERE state = 'pending')::int AS pending_user,
                   count(*)::int AS open_user,
                   count(*) FILTER (WHERE state = 'pending' AND device_id = ${deviceId})::int AS pending_device,
                   count(*) FILTER (WHERE device_id = ${deviceId})::int AS open_device
            FROM sessions WHERE user_id = ${userId} AND state IN ${sql.in(openStates)} AND expires_at > now()`
          const n = rows[0] ?? { pending_user: 0, open_user: 0, pending_device: 0, open_device: 0 }
          if (n.pending_device >= caps.pendingPerDevice) {
            return yield* limitReached("MAX_PENDING_SESSIONS_PER_DEVICE", caps.pendingPerDevice, "pending sessions per device")
          }
          if (n.pending_user >= caps.pendingPerUser) {
            return yield* limitReached("MAX_PENDING_SESSIONS_PER_USER", caps.pendingPerUser, "pending sessions per user")
          }
          if (n.open_device >= caps.openPerDevice) {
            return yield* limitReached("MAX_OPEN_SESSIONS_PER_DEVICE", caps.openPerDevice, "open (pending or active) sessions per device")
          }
          if (n.open_user >= caps.openPerUser) {
            return yield* limitReached("MAX_OPEN_SESSIONS_PER_USER", caps.openPerUser, "open (pending or active) sessions per user")
          }
        })

      /** Refuses when the owner already holds `capacity` open sessions; under a per-instance lock, so concurrent starts cannot both take the last place. */
      const checkCapacity = ({ capacity, instance }: SessionOwner) =>
        Effect.gen(function*() {
          yield* sql`SELECT pg_advisory_xact_lock(hashtext(${`instance:${instance}`}))`
          const rows = yield* sql<{ n: number }>`
            SELECT count(*)::int AS n FROM sessions WHERE instance_id = ${instance} AND state IN ${sql.in(openStates)}`
          if ((rows[0]?.n ?? 0) >= capacity) return yield* new InstanceFull({ capacity })
        })

      const insert = (
        { actor, config, deviceId, owner, reason, userId }: {
          readonly userId: string
          readonly deviceId: string
          readonly config: SessionConfig
          readonly owner?: SessionOwner
        } & Cause
      ) =>
        Effect.flatMap(
          sql<SessionRow>`
              WITH created AS (
                INSERT INTO sessions (user_id, device_id, state, config, expires_at, instance_id)
                VALUES (${userId}, ${deviceId}, 'pending', ${json(config)}::jsonb, now() + make_interval(secs => ${
            Math.min(config.idleTimeoutSeconds, pendingSeconds)
          }), ${owner?.instance ?? null})
                RETURNING *
              ), logged AS (
                INSERT INTO session_events (session_id, from_state, to_state, actor, reason)
                SELECT id, NULL, 'pending', ${actor}, ${reason} FROM created
              )
              SELECT * FROM created`,
          (rows) =>
            Option.match(single(rows), {
              onNone: () => Effect.die(new Error("INSERT returned no row")),
              onSome: Effect.succeed
            })
        )

      // After the commit (not inside the caps transaction): seeded so the next read of a session just
      // started (e.g. its stop's ownership check) needs no SELECT.
      const started = (session: Session) => Effect.andThen(Effect.sync(() => startedHere.add(session.id)), cache.put(session.id, session))

      return {
        create: (input) => {
          const { caps, owner } = input
          const checks = [
            ...(caps === undefined ? [] : [checkCaps(input.userId, input.deviceId, caps)]),
            ...(owner === undefined ? [] : [checkCapacity(owner)])
          ]
          return Effect.tap(
            checks.length === 0 ? insert(input) : sql.withTransaction(Effect.andThen(Effect.all(checks, { discard: true }), insert(input))),
            started
          )
        },

        ownerOf: (id) =>
          Effect.map(
            sql<{ instance_id: string | null }>`SELECT instance_id FROM sessions WHERE id = ${id} AND state IN ${sql.in(openStates)}`,
            (rows) => Option.fromNullishOr(rows[0]?.instance_id)
          ),

        countOwned: (instance) =>
          Effect.map(
            sql<{ n: number }>`SELECT count(*)::int AS n FROM sessions WHERE instance_id = ${instance} AND state IN ${sql.in(openStates)}`,
            (rows) => rows[0]?.n ?? 0
          ),

        ownersOtherThan: (alive) =>
          Effect.map(
            sql<{ instance_id: string }>`
              SELECT DISTINCT instance_id FROM sessions
              WHERE state IN ${sql.in(openStates)} AND instance_id IS NOT NULL AND instance_id NOT IN ${sql.in(alive)}`,
            (rows) => rows.map((r) => r.instance_id)
          ),

        failOwnedBy: (instance, batch, { actor, reason }) =>
          sql<SessionRow & { from_state: SessionState }>`
            WITH lost AS (
              SELECT id, state FROM sessions
              WHERE instance_id = ${instance} AND state IN ${sql.in(openStates)}
              LIMIT ${batch}
              FOR UPDATE SKIP LOCKED
            ), moved AS (
              UPDATE sessions s SET state = 'error', ended_at = now(), error = ${reason}
              FROM lost WHERE s.id = lost.id
              RETURNING s.*, lost.state AS from_state
            ), logged AS (
              INSERT INTO session_events (session_id, from_state, to_state, actor, reason)
              SELECT id, from_state, 'error', ${actor}, ${reason} FROM moved
            )
            SELECT * FROM moved`.pipe(Effect.flatMap(closedInBulk)),

        find: (id) => cache.get(id, load(id)),
        findFresh: load,
        findMany: (ids) =>
          ids.length === 0 ? Effect.succeed([]) : Effect.map(sql<SessionRow>`SELECT * FROM sessions WHERE id IN ${sql.in(ids)}`, (rows) => rows.map(toSession)),

        transition: (id, to, { actor, error, pendingReason, reason }) =>
          write(
            id,
            Effect.gen(function*() {
              // One statement (so one transaction): lock the row and read its state, update it only if the
              // state machine allows `to` from there, and log the event. A concurrent writer waits on the
              // lock, then sees the new state and matches nothing.
              const rows = yield* sql<SessionRow & { from_state: SessionState }>`
              WITH old AS (
                SELECT id, state FROM sessions WHERE id = ${id} FOR UPDATE
              ), moved AS (
                UPDATE sessions s SET
                  state = ${to},
                  started_at = CASE WHEN ${to} = 'active' THEN now() ELSE s.started_at END,
                  ended_at = CASE WHEN ${to} IN ('completed', 'error', 'expired') THEN now() ELSE s.ended_at END,
                  error = COALESCE(${error ?? null}::text, s.error),
                  last_activity_at = now(),
                  expires_at = now() + make_interval(secs => (s.config->>'idleTimeoutSeconds')::int)
                FROM old
                WHERE s.id = old.id AND old.state IN ${sql.in(sourcesOf(to))}
                RETURNING s.*, old.state AS from_state
              ), logged AS (
                INSERT INTO session_events (session_id, from_state, to_state, actor, reason)
                SELECT id, from_state, ${to}, ${actor}, CASE WHEN from_state = 'pending' THEN ${pendingReason ?? reason} ELSE ${reason} END FROM moved
              )
              SELECT * FROM moved`
              const row = rows[0]
              if (row === undefined) return yield* refuse(id, (state) => illegalTransition(state, to))
              const session = toSession(row)
              ended(session)
              return { session, from: row.from_state }
            })
          ),

        updateConfig: (id, patch) =>
          write(
            id,
            Effect.gen(function*() {
              const rows = yield* sql<SessionRow>`
              UPDATE sessions SET
                config = config || ${json(patch)}::jsonb,
                last_activity_at = now(),
                expires_at = ${nextExpiry(sql`((config || ${json(patch)}::jsonb)->>'idleTimeoutSeconds')::int`)}
              WHERE id = ${id} AND state IN ${sql.in(openStates)}
              RETURNING *`
              return yield* Option.match(single(rows), { onNone: () => refuse(id, sessionClosed), onSome: Effect.succeed })
            })
          ),

        appendContext: (id, entry, cap) =>
          write(
            id,
            Effect.gen(function*() {
              const item = json(contextItem(entry, new Date().toISOString()))
              const rows = yield* sql<SessionRow>`
              UPDATE sessions SET
                context = ${appendedContext(sql`jsonb_build_array(${item}::jsonb)`, cap)},
                last_activity_at = now(),
                expires_at = ${nextExpiry(idleOfConfig)}
              WHERE id = ${id} AND state IN ${sql.in(openStates)}
              RETURNING *`
              return yield* Option.match(single(rows), { onNone: () => refuse(id, sessionClosed), onSome: Effect.succeed })
            })
          ),

        appendContextMany: (entries, cap) => {
          if (entries.length === 0) return Effect.succeed([])
          const items = new Map<string, Array<ReturnType<typeof contextItem>>>()
          const at = new Date().toISOString()
          for (const { id, entry } of entries) {
            const list = items.get(id) ?? []
            list.push(contextItem(entry, at))
            items.set(id, list)
          }
          const batch = json([...items].map(([id, list]) => ({ id, items: list })))
          const ids = [...items.keys()]
          // One row per session (an UPDATE changes a row once): its new entries appended in order, then capped.
          return sql<{ id: string }>`
            UPDATE sessions AS s SET
              context = ${appendedContext(sql`b.items`, cap)},
              last_activity_at = now(),
              expires_at = ${nextExpiry(idleOfConfig)}
            FROM jsonb_to_recordset(${batch}::jsonb) AS b(id uuid, items jsonb)
            WHERE s.id = b.id AND s.state IN ${sql.in(openStates)}
            RETURNING s.id`.pipe(
            Effect.map((rows) => rows.map((r) => SessionId.make(r.id))),
            Effect.ensuring(Effect.forEach(ids, (id) => cache.invalidate(id), { discard: true }))
          )
        },

        touch: (id) =>
          write(
            id,
            Effect.map(
              sql`
            UPDATE sessions SET last_activity_at = now(), expires_at = ${nextExpiry(idleOfConfig)}
            WHERE id = ${id} AND state IN ${sql.in(openStates)} RETURNING id`,
              (rows) => rows.length > 0
            )
          ),

        list: ({ after, limit, state, userId }) => {
          const where = [
            ...Option.match(userId, { onNone: () => [], onSome: (u) => [sql`user_id = ${u}`] }),
            ...Option.match(state, { onNone: () => [], onSome: (s) => [sql`state = ${s}`] }),
            ...Option.match(after, { onNone: () => [], onSome: (a) => [sql`(created_at, id) < (${a.createdAt}::timestamptz, ${a.id}::uuid)`] })
          ]
          return Effect.map(
            sql<SessionRow>`SELECT * FROM sessions WHERE ${sql.and(where)} ORDER BY created_at DESC, id DESC LIMIT ${limit}`,
            (rows) => rows.map(toSession)
          )
        },

        expireDue: (batch, { actor, reason }) =>
          // SKIP LOCKED: rows another sweeper (or a concurrent stop) holds are left to it; one statement, one transaction.
          sql<SessionRow & { from_state: SessionState }>`
            WITH due AS (
              SELECT id, state FROM sessions
              WHERE state IN ${sql.in(openStates)} AND expires_at <= now()
              ORDER BY expires_at LIMIT ${batch}
              FOR UPDATE SKIP LOCKED
            ), moved AS (
              UPDATE sessions s SET state = 'expired', ended_at = now()
              FROM due WHERE s.id = due.id
              RETURNING s.*, due.state AS from_state
            ), logged AS (
              INSERT INTO session_events (session_id, from_state, to_state, actor, reason)
              SELECT id, from_state, 'expired', ${actor},
                CASE WHEN from_state = 'pending' THEN ${`${reason}: no media before the pending timeout`} ELSE ${reason} END FROM moved
            )
            SELECT * FROM moved`.pipe(Effect.flatMap(closedInBulk)),

        openHere: Effect.sync(() => [...startedHere]),
        isOpenHere: (id) => startedHere.has(id),

        openRooms: Effect.map(
          sql<{ room: string }>`SELECT DISTINCT config->>'room' AS room FROM sessions WHERE state IN ('pending', 'active') AND config ? 'room'`,
          (rows) => new Set(rows.map((r) => r.room))
        ),

        counts: Effect.map(
          sql<{ state: SessionState; n: string }>`SELECT state, count(*)::text AS n FROM sessions GROUP BY state`,
          (rows) => {
            const counts: Record<SessionState, number> = { pending: 0, active: 0, completed: 0, error: 0, expired: 0 }
            for (const r of rows) counts[r.state] = Number(r.n)
            return counts
          }
        ),

        events: (id) =>
          Effect.map(
            sql<{ id: string; session_id: string; at: Date; from_state: SessionState | null; to_state: SessionState; actor: string; reason: string }>`
              SELECT * FROM session_events WHERE session_id = ${id} ORDER BY id`,
            (rows) =>
              rows.map((r) => ({
                id: String(r.id),
                sessionId: SessionId.make(r.session_id),
                at: iso(r.at),
                from: r.from_state,
                to: r.to_state,
                actor: r.actor,
                reason: r.reason
              }))
          )
      }
    })
  )
}
