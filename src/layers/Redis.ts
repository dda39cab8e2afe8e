import { Context, Duration, Effect, Layer, Option, Redacted, Schema, type Scope } from "effect"
import { Redis as IORedis } from "ioredis"
import { Gauge } from "prom-client"
import { AppConfig } from "./Config.ts"
import { Health } from "./Health.ts"
import { Metrics } from "./Metrics.ts"

/** Start-up stops on this: the URL (password redacted) and why no connection became ready. */
export class RedisConnectError extends Schema.TaggedError<RedisConnectError>()("RedisConnectError", {
  url: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `cannot connect to Redis at ${this.url}: ${this.detail}`
  }
}

export interface RedisConnectOptions {
  readonly url: Redacted.Redacted<string>
  readonly reconnectBaseMs: number
  readonly reconnectMaxMs: number
  /** How long start-up waits for the connection to be ready. */
  readonly connectTimeoutMs: number
  /** A command without a reply within this fails instead of waiting for a reconnect forever. */
  readonly commandTimeoutMs: number
}

const QUIT_TIMEOUT = Duration.seconds(2)

/** The URL as it may appear in logs and errors: any password replaced by `***`. */
export const redactUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    return parsed.toString().replace(/\/$/, "")
  } catch {
    return "<unparseable redis url>"
  }
}

/** Exponential from `baseMs`, capped at `maxMs`, "equal jitter": a random point in the upper half. */
export const reconnectDelay = (attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number => {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1))
  return Math.round(ceiling / 2 + random() * (ceiling / 2))
}

export interface RedisConnection {
  readonly client: IORedis
  readonly stats: () => { readonly status: string; readonly reconnects: number; readonly lastError?: string }
}

const waitFor = (client: IORedis, event: "ready" | "end"): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    if (client.status === event) return resume(Effect.void)
    const done = () => resume(Effect.void)
    client.once(event, done)
    return Effect.sync(() => client.off(event, done))
  })

/** Closes gracefully (QUIT, bounded), then hard; a client still retrying only needs its timer cleared. */
const close = (client: IORedis): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (client.status === "ready") {
      yield* Effect.tryPromise(() => client.quit()).pipe(
        Effect.andThen(waitFor(client, "end")),
        Effect.timeout(QUIT_TIMEOUT),
        Effect.ignore
      )
    }
    if (client.status !== "end") client.disconnect()
  })

/**
 * One scoped ioredis connection: ready when this succeeds (or a typed error after
 * `connectTimeoutMs`), closed when the scope closes. Reconnects are counted and logged.
 */
export const connect = (options: RedisConnectOptions, name: string): Effect.Effect<RedisConnection, RedisConnectError, Scope.Scope> =>
  Effect.gen(function*() {
    const raw = Redacted.value(options.url)
    const shownUrl = redactUrl(raw)
    const password = Option.fromNullishOr(URL.parse(raw)?.password).pipe(Option.filter((p) => p !== ""))
    // Error texts come from the driver: never let the password through, whatever it says.
    const scrub = (text: string) => Option.match(password, { onNone: () => text, onSome: (p) => text.replaceAll(p, "***") })
    const runFork = Effect.runForkWith(yield* Effect.context<never>())
    const state = { reconnects: 0, lastError: Option.none<string>(), everReady: false }

    const client = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new IORedis(raw, {
          connectionName: `auralink:${name}`,
          connectTimeout: options.connectTimeoutMs,
          commandTimeout: options.commandTimeoutMs,
          // Fail fast while the connection is down (no queueing until it is back, no retries of
          // commands already sent): callers decide to fail open or closed at once (README, "Redis outages").
          enableOfflineQueue: false,
          maxRetriesPerRequest: 0,
          // Commands issued in the same tick go out in one write (many requests share this connection).
          enableAutoPipelining: true,
          retryStrategy: (attempt) => reconnectDelay(attempt, options.reconnectBaseMs, options.reconnectMaxMs)
        })
      ),
      close
    )
    client.on("error", (error: Error) => {
      state.lastError = Option.some(scrub(error.message))
    })
    client.on("reconnecting", (delayMs: unknown) => {
      state.reconnects += 1
      // Start-up retries are reported once, by the timeout error; afterwards every reconnect is logged.
      if (state.everReady) {
        runFork(
          Effect.logWarning("redis connection lost, reconnecting").pipe(
            Effect.annotateLogs({ connection: name, url: shownUrl, delayMs, attempt: state.reconnects, error: Option.getOrUndefined(state.lastError) })
          )
        )
      }
    })
    client.on("ready", () => {
      if (state.everReady) runFork(Effect.logInfo("redis connection ready again").pipe(Effect.annotateLogs({ connection: name, url: shownUrl })))
      state.everReady = true
    })

    yield* waitFor(client, "ready").pipe(
      Effect.timeoutOrElse({
        duration: Duration.millis(options.connectTimeoutMs),
        orElse: () =>
          Effect.fail(
            new RedisConnectError({
              url: shownUrl,
              detail: `not ready within ${options.connectTimeoutMs} ms (${Option.getOrElse(state.lastError, () => `status ${client.status}`)})`
            })
          )
      })
    )
    return {
      client,
      stats: () => ({
        status: client.status,
        reconnects: state.reconnects,
        ...Option.match(state.lastError, { onNone: () => ({}), onSome: (lastError) => ({ lastError }) })
      })
    }
  })

export interface RedisLayerOptions {
  readonly connectTimeoutMs?: number
  readonly commandTimeoutMs?: number
}

/**
 * The shared Redis connection (from `REDIS_URL`), its readiness probe ("redis", critical: PING),
 * its `/status` section and `auralink_redis_connections_active`. `duplicate` opens further
 * connections with the same settings, e.g. the dedicated subscriber connection pub/sub needs.
 */
export class Redis extends Context.Service<Redis, {
  readonly client: IORedis
  /** The URL with any password redacted, for logs. */
  readonly url: string
  readonly duplicate: (name: string) => Effect.Effect<IORedis, RedisConnectError, Scope.Scope>
  /** Connections open now (the main one and every duplicate) and how many of them are ready. */
  readonly connections: () => { readonly open: number; readonly ready: number }
}>()("auralink/Redis") {
  static readonly layerWith = (layerOptions: RedisLayerOptions = {}) =>
    Layer.effect(
      Redis,
      Effect.gen(function*() {
        const { redis } = yield* AppConfig
        const health = yield* Health
        if (Option.isNone(redis.url)) {
          return yield* new RedisConnectError({ url: "(unset)", detail: "REDIS_URL is not set" })
        }
        const options: RedisConnectOptions = {
          url: redis.url.value,
          reconnectBaseMs: redis.reconnectBaseMs,
          reconnectMaxMs: redis.reconnectMaxMs,
          connectTimeoutMs: layerOptions.connectTimeoutMs ?? 10_000,
          commandTimeoutMs: layerOptions.commandTimeoutMs ?? redis.commandTimeoutMs
        }
        const url = redactUrl(Redacted.value(options.url))
        // Every connection this layer opened and has not closed yet.
        const open = new Set<IORedis>()
        const tracked = (name: string) =>
          Effect.acquireRelease(
            Effect.tap(connect(options, name), (c) => Effect.sync(() => open.add(c.client))),
            (c) => Effect.sync(() => open.delete(c.client))
          )
        const connections = () => ({ open: open.size, ready: [...open].filter((c) => c.status === "ready").length })
        const main = yield* tracked("main")
        new Gauge({
          name: "auralink_redis_connections_active",
          help: "Redis connections of this instance that are ready (main, subscriber and other duplicates)",
          registers: [(yield* Metrics).registry],
          collect() {
            this.set(connections().ready)
          }
        })
        yield* health.register({
          name: "redis",
          critical: true,
          // A dropped connection answers at once instead of queueing the PING until it is back.
          check: Effect.suspend(() =>
            main.client.status === "ready"
              ? Effect.tryPromise(() => main.client.ping()).pipe(Effect.mapError((e) => e.cause))
              : Effect.fail(`redis connection ${main.client.status}`)
          )
        })
        yield* health.section("redis", Effect.sync(() => ({ url, ...main.stats(), connections: connections() })))
        yield* Effect.logInfo("redis connected").pipe(Effect.annotateLogs({ url }))
        return {
          client: main.client,
          url,
          duplicate: (name) => Effect.map(tracked(name), (c) => c.client),
          connections
        }
      })
    )

  static readonly layer = Redis.layerWith()
}
