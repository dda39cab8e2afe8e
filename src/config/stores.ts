import { Effect, Option, Redacted } from "effect"
import { countOrZero, key, ms, rule, secret } from "./key.ts"

/** The seed's file writes JDBC URLs; the Postgres driver wants the bare `postgresql://` form. */
const DATABASE_URL = secret("DATABASE_URL", "auralink.database.url", (text) => text.startsWith("jdbc:") ? text.slice("jdbc:".length) : text)

/** DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_PASSWORD, the seed's discrete keys, when DATABASE_URL is not given. */
const discreteDatabaseUrl = Effect.gen(function*() {
  const hostKey = key("DB_HOST", "auralink.database.host")
  const host = yield* hostKey.optional("a host name")
  if (Option.isNone(host)) return Option.none<Redacted.Redacted<string>>()
  // A value that cannot be a URL's host (e.g. with spaces) is this key's one-line error, not a TypeError at start-up.
  if (!URL.canParse(`postgresql://${host.value}/`)) return yield* hostKey.fail("a host name")
  const port = yield* key("DB_PORT", "auralink.database.port").port(5432)
  const name = yield* key("DB_NAME", "auralink.database.name").text("auralink", "a database name")
  const user = yield* key("DB_USER", "auralink.database.username").text("postgres", "a user name")
  const password = yield* secret("DB_PASSWORD", "auralink.database.password").optional()
  const target = new URL(`postgresql://${host.value}:${port}/${encodeURIComponent(name)}`)
  target.username = user
  if (Option.isSome(password)) target.password = Redacted.value(password.value)
  return Option.some(Redacted.make(target.toString()))
})

const poolMin = key("PGPOOL_MIN_INGRESS", "auralink.database.pool_min").int(5, countOrZero)

export const database = Effect.all({
  /** None: run the embedded Postgres (PGlite). */
  url: DATABASE_URL.optional().pipe(
    Effect.flatMap((given) => Option.isSome(given) ? Effect.succeed(given) : discreteDatabaseUrl),
    Effect.flatMap(DATABASE_URL.url(["postgres:", "postgresql:"], "a postgres:// or postgresql:// URL"))
  ),
  poolMin,
  poolMax: Effect.flatMap(poolMin, (min) =>
    key("PGPOOL_MAX_INGRESS", "auralink.database.pool_max")
      .int(20, rule("a whole number >= 1 and >= PGPOOL_MIN_INGRESS", (n) => n >= 1 && n >= min))),
  connectTimeoutMs: key("PG_CONN_TIMEOUT_MS", "auralink.database.connect_timeout_ms").int(2000, ms),
  idleTimeoutMs: key("PG_IDLE_TIMEOUT_MS", "auralink.database.idle_timeout_ms").int(10_000, ms),
  connectRetries: key("PG_CONNECT_RETRIES", "auralink.database.connect_retries").int(3, countOrZero)
})

const REDIS_URL = secret("REDIS_URL", "auralink.redis.url")

/** REDIS_HOST/REDIS_PORT (the seed's `redis { host, port }`), when REDIS_URL is not given. */
const discreteRedisUrl = Effect.gen(function*() {
  const host = yield* key("REDIS_HOST", "auralink.redis.host").optional("a host name")
  if (Option.isNone(host)) return Option.none<Redacted.Redacted<string>>()
  const port = yield* key("REDIS_PORT", "auralink.redis.port").port(6379)
  return Option.some(Redacted.make(`redis://${host.value}:${port}`))
})

const reconnectBaseMs = key("REDIS_RECONNECT_BASE_MS", "auralink.redis.reconnect_base_ms").int(100, ms)

export const redis = Effect.all({
  /** None: the in-memory state store. */
  url: REDIS_URL.optional().pipe(
    Effect.flatMap((given) => Option.isSome(given) ? Effect.succeed(given) : discreteRedisUrl),
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
