import { Effect, Option, Redacted } from "effect"
import { countOrZero, key, ms, rule, secret } from "./key.ts"

/** The seed's file writes JDBC URLs; the Postgres driver wants the bare `postgresql://` form. */
const DATABASE_URL = secret("DATABASE_URL", "auralink.database.url", (text) => text.startsWith("jdbc:") ? text.slice("jdbc:".length) : text)

const DB_HOST = key("DB_HOST", "auralink.database.host")
const DB_PORT = key("DB_PORT", "auralink.database.port")
const DB_NAME = key("DB_NAME", "auralink.database.name")
const DB_USER = key("DB_USER", "auralink.database.username")
const DB_PASSWORD = secret("DB_PASSWORD", "auralink.database.password")

/** DB_HOST/DB_PORT/DB_NAME, the seed's discrete keys, when DATABASE_URL is not given (credentials are added after). */
const discreteDatabaseUrl = Effect.gen(function*() {
  const host = yield* DB_HOST.optional("a host name")
  if (Option.isNone(host)) return yield* Effect.as(Effect.all([DB_PORT.unused, DB_NAME.unused]), Option.none<Redacted.Redacted<string>>())
  // A value that cannot be a URL's host (e.g. with spaces) is this key's one-line error, not a TypeError at start-up.
  if (!URL.canParse(`postgresql://${host.value}/`)) return yield* DB_HOST.fail("a host name")
  const port = yield* DB_PORT.port(5432)
  const name = yield* DB_NAME.text("auralink", "a database name")
  return Option.some(Redacted.make(`postgresql://${host.value}:${port}/${encodeURIComponent(name)}`))
})

/**
 * DB_USER/DB_PASSWORD (the seed's `database { username, password }`) go into a URL that names no
 * user; a URL's own credentials (`user:password@` or `?user=&password=`) win. The discrete keys default the user to `postgres`.
 */
const withCredentials = (given: Option.Option<Redacted.Redacted<string>>, userFallback: Option.Option<string>) =>
  Effect.gen(function*() {
    const user = yield* Effect.map(DB_USER.optional("a user name"), Option.orElse(() => userFallback))
    const password = yield* DB_PASSWORD.optional()
    if (Option.isNone(given) || !URL.canParse(Redacted.value(given.value))) return given
    const target = new URL(Redacted.value(given.value))
    // JDBC URLs may carry them as `?user=...&password=...` (the driver reads those too).
    const named = target.username !== "" || target.password !== "" || target.searchParams.has("user") || target.searchParams.has("password")
    if (named) return given
    if (Option.isSome(user)) target.username = user.value
    if (Option.isSome(password)) target.password = Redacted.value(password.value)
    return Option.some(Redacted.make(target.toString()))
  })

/** DATABASE_URL (or the file's JDBC `database.url`), else the discrete keys, with the separate credentials combined in. */
const databaseUrl = Effect.gen(function*() {
  const given = yield* DATABASE_URL.optional()
  if (Option.isSome(given)) {
    yield* Effect.all([DB_HOST.unused, DB_PORT.unused, DB_NAME.unused])
    return yield* withCredentials(given, Option.none())
  }
  return yield* withCredentials(yield* discreteDatabaseUrl, Option.some("postgres"))
})

const poolMin = key("PGPOOL_MIN_INGRESS", "auralink.database.pool_min").int(5, countOrZero)

export const database = Effect.all({
  /** None: run the embedded Postgres (PGlite). */
  url: Effect.flatMap(databaseUrl, DATABASE_URL.url(["postgres:", "postgresql:"], "a postgres:// or postgresql:// URL")),
  poolMin,
  poolMax: Effect.flatMap(poolMin, (min) =>
    key("PGPOOL_MAX_INGRESS", "auralink.database.pool_max")
      .int(20, rule("a whole number >= 1 and >= PGPOOL_MIN_INGRESS", (n) => n >= 1 && n >= min))),
  connectTimeoutMs: key("PG_CONN_TIMEOUT_MS", "auralink.database.connect_timeout_ms").int(2000, ms),
  idleTimeoutMs: key("PG_IDLE_TIMEOUT_MS", "auralink.database.idle_timeout_ms").int(10_000, ms),
  connectRetries: key("PG_CONNECT_RETRIES", "auralink.database.connect_retries").int(3, countOrZero)
})

const REDIS_URL = secret("REDIS_URL", "auralink.redis.url")

const REDIS_HOST = key("REDIS_HOST", "auralink.redis.host")
const REDIS_PORT = key("REDIS_PORT", "auralink.redis.port")

/** REDIS_HOST/REDIS_PORT (the seed's `redis { host, port }`), when REDIS_URL is not given. */
const discreteRedisUrl = Effect.gen(function*() {
  const host = yield* REDIS_HOST.optional("a host name")
  if (Option.isNone(host)) return yield* Effect.as(REDIS_PORT.unused, Option.none<Redacted.Redacted<string>>())
  const port = yield* REDIS_PORT.port(6379)
  return Option.some(Redacted.make(`redis://${host.value}:${port}`))
})

const reconnectBaseMs = key("REDIS_RECONNECT_BASE_MS", "auralink.redis.reconnect_base_ms").int(100, ms)

export const redis = Effect.all({
  /** None: the in-memory state store. */
  url: REDIS_URL.optional().pipe(
    Effect.flatMap((given) => Option.isSome(given) ? Effect.as(Effect.all([REDIS_HOST.unused, REDIS_PORT.unused]), given) : discreteRedisUrl),
    Effect.flatMap(REDIS_URL.url(["redis:", "rediss:"], "a redis:// or rediss:// URL"))
  ),
  reconnectBaseMs,
  reconnectMaxMs: Effect.flatMap(reconnectBaseMs, (base) =>
    key("REDIS_RECONNECT_MAX_MS", "auralink.redis.reconnect_max_ms")
      .int(1000, rule("milliseconds >= REDIS_RECONNECT_BASE_MS", (n) => n >= base))),
  /** Every key and channel of the state store starts with it: several deployments (or test runs) can share one Redis. */
  keyPrefix: key("REDIS_KEY_PREFIX", "auralink.redis.key_prefix").text("auralink:", "a non-empty key prefix"),
  /** A command without a reply within this fails (and with the connection down, at once). */
  commandTimeoutMs: key("REDIS_COMMAND_TIMEOUT_MS", "auralink.redis.command_timeout_ms").int(300, ms)
})
