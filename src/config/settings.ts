import { Config, ConfigProvider, Effect, Option, Redacted } from "effect"
import type { LogLevel } from "effect/LogLevel"
import { createPrivateKey, type KeyObject, randomBytes } from "node:crypto"
import { availableParallelism } from "node:os"
import { isSecret, type KeyName } from "./keys.ts"
import { InvalidConfig, type RawConfig } from "./source.ts"

export interface Settings {
  readonly service: {
    readonly name: string
    readonly version: string
    readonly environment: Environment
    readonly region: string
    readonly bridgeId: string
    readonly dataDir: string
    readonly shutdownTimeoutMs: number
  }
  readonly http: {
    readonly host: string
    readonly port: number
    readonly bodyLimitBytes: number
    readonly metricsPort: Option.Option<number>
    /** Time to receive a request's headers, and the whole request (not the response: SSE streams are not cut). */
    readonly headersTimeoutMs: number
    readonly requestTimeoutMs: number
    /** Idle time before a kept-alive connection is closed. */
    readonly keepAliveTimeoutMs: number
    /** Open connections per listener; more are closed at once. */
    readonly maxConnections: number
    /** Web origins (`https://app.example.com`) allowed to call the API from a browser; `*` for any; empty: none. */
    readonly corsOrigins: ReadonlyArray<string>
  }
  readonly grpc: { readonly port: number }
  readonly log: { readonly level: LogLevel }
  readonly tracing: { readonly otlpEndpoint: Option.Option<string> }
  readonly features: { readonly aic: boolean; readonly sip: boolean; readonly rtmp: boolean }
  /** The browser demo at /demo (prebuilt by scripts/build-demo.ts); default on in development only. */
  readonly demo: { readonly enabled: boolean }
  readonly database: {
    /** None: run the embedded Postgres (PGlite). */
    readonly url: Option.Option<Redacted.Redacted<string>>
    readonly poolMin: number
    readonly poolMax: number
    readonly connectTimeoutMs: number
    readonly idleTimeoutMs: number
    readonly connectRetries: number
  }
  readonly redis: {
    /** None: the in-memory state store. */
    readonly url: Option.Option<Redacted.Redacted<string>>
    readonly reconnectBaseMs: number
    readonly reconnectMaxMs: number
    /** A command without a reply within this fails (and with the connection down, at once). */
    readonly commandTimeoutMs: number
  }
  readonly auth: {
    readonly jwtSecret: Redacted.Redacted<string>
    /** true when no JWT_SECRET was given and a random one was made for this process. */
    readonly jwtSecretEphemeral: boolean
    /** HS256 signs with jwtSecret; EdDSA (Ed25519) and ES256 (P-256) sign with privateKey and publish JWKS. */
    readonly algorithm: JwtAlgorithm
    readonly privateKey: Option.Option<KeyObject>
    /** The `kid` of the published key; None: its RFC 7638 thumbprint. */
    readonly keyId: Option.Option<string>
    readonly issuer: string
    readonly audience: string
    readonly accessTokenTtlSeconds: number
    readonly refreshTokenTtlSeconds: number
    /** The operator key that may register and revoke devices; None: registration is refused. */
    readonly provisioningKey: Option.Option<Redacted.Redacted<string>>
    /** true when ENVIRONMENT=development gave no key and a random one was made for this process (logged once at start). */
    readonly provisioningKeyGenerated: boolean
  }
  readonly sessions: {
    /** Default idle timeout of a session (its config may override it within the same bounds). */
    readonly idleTimeoutSeconds: number
    /** Context entries kept per session; the oldest are dropped. */
    readonly contextCap: number
    readonly sweepIntervalMs: number
    readonly cacheTtlMs: number
    readonly cacheMax: number
  }
  /** What one client may hold at once (README "Limits"); beyond them: 429 problem naming the setting. */
  readonly limits: {
    /** A pending session with no producer by then is expired by the sweeper. */
    readonly pendingSessionTimeoutSeconds: number
    readonly maxPendingSessionsPerUser: number
    readonly maxPendingSessionsPerDevice: number
    /** Pending + active. */
    readonly maxOpenSessionsPerUser: number
    readonly maxOpenSessionsPerDevice: number
    /** WebRTC + plain transports the client made (server-side ones not counted). */
    readonly maxTransportsPerSession: number
    /** Producers + data producers. */
    readonly maxProducersPerSession: number
    readonly maxSseStreamsPerSession: number
    readonly maxSseStreamsPerUser: number
  }
  readonly rateLimit: {
    readonly authPerMinute: number
    readonly sessionPerMinute: number
    readonly defaultPerMinute: number
  }
  readonly media: {
    readonly rtcMinPort: number
    readonly rtcMaxPort: number
    readonly listenIp: string
    readonly announcedIp: Option.Option<string>
    /** true when ENVIRONMENT=development listens on all interfaces with nothing announced, so 127.0.0.1 is announced. */
    readonly announcedIpDefaulted: boolean
    /** mediasoup worker processes (default: one per core); the RTC port range is split between them. */
    readonly workers: number
    readonly logLevel: "debug" | "warn" | "error" | "none"
    readonly logTags: ReadonlyArray<string>
    /** Each worker is asked for its resource usage this often; no answer within workerTimeoutMs marks it stalled. */
    readonly workerProbeIntervalMs: number
    /** Also the longest a request waits on a worker before it answers 503. */
    readonly workerTimeoutMs: number
    /** Handed to clients as iceServers. */
    readonly stunUrls: ReadonlyArray<string>
    readonly turnUrls: ReadonlyArray<string>
    readonly turnUsername: Option.Option<string>
    readonly turnCredential: Option.Option<Redacted.Redacted<string>>
  }
  readonly audio: {
    /** Restarts of a failed producer pipeline in a row (jittered exponential backoff) before its session goes to `error`. */
    readonly pipelineRestarts: number
    readonly pipelineRestartBaseMs: number
    readonly pipelineRestartMaxMs: number
    /** Worker threads that decode Opus RTP (0: on the main thread). */
    readonly decodeThreads: number
    /** Opus RTP: how long a packet after a hole waits for the missing one (0: no reordering, a hole is loss at once). */
    readonly jitterBufferMs: number
  }
  readonly asr: {
    /** None: audio goes to the embedded recording sink (WAV files under DATA_DIR/recordings). */
    readonly gatewayUrl: Option.Option<string>
    /** Connect deadline of a stream, and the longest a chunk write may wait before the stream counts as stalled. */
    readonly deadlineMs: number
    readonly reconnectBaseMs: number
    readonly reconnectMaxMs: number
    /** Circuit breaker: consecutive failures that open it, and how long it stays open before one probe. */
    readonly breakerFailures: number
    readonly breakerResetMs: number
    /** Audio (ms) kept per session and re-sent after a reconnect; beyond it the oldest chunks are dropped. */
    readonly replayBufferMs: number
    /** Chunks a session's `send` may queue before it waits (back-pressure). */
    readonly queueCapacity: number
  }
  readonly aiCore: {
    /** None: no AI Core; the AIC pipeline forwards every frame unchanged (annotate-only, fallback flag). */
    readonly grpcUrl: Option.Option<string>
    /** Per-frame deadline: a result not back within it is a failure and the frame passes through. */
    readonly deadlineMs: number
    /** Circuit breaker: consecutive failed frames that open it, and how long it stays open before one probe. */
    readonly breakerFailures: number
    readonly breakerResetMs: number
    /** Jittered exponential backoff between attempts to re-open a session's stream. */
    readonly reconnectBaseMs: number
    readonly reconnectMaxMs: number
    /** Frames of one session awaiting a result; further frames bypass the AI Core (fallback `overloaded`). */
    readonly maxInFlight: number
  }
  readonly aic: {
    /** `annotate`: payload unchanged, AIC metadata only; `replace`: the AI Core's payload is forwarded. */
    readonly mode: AicMode
    /** RFC 8285 id of the AIC element in forwarded packets (one-byte form, 1-14). */
    readonly extensionId: number
    /** Where live sessions' processed video RTP is sent (`host:port`, UDP); None: live video is not processed. */
    readonly forwardTarget: Option.Option<{ readonly host: string; readonly port: number }>
    /** RTP packets buffered per pipeline between the pipeline and its sink (beyond it: dropped, counted). */
    readonly queueCapacity: number
  }
  readonly dashboard: {
    readonly url: Option.Option<string>
    readonly apiKey: Option.Option<Redacted.Redacted<string>>
  }
  readonly webrtcServer: {
    readonly url: Option.Option<string>
    readonly apiKey: Option.Option<Redacted.Redacted<string>>
  }
}

const logLevels: Record<string, LogLevel> = {
  trace: "Trace",
  debug: "Debug",
  info: "Info",
  warn: "Warn",
  warning: "Warn",
  error: "Error",
  fatal: "Fatal",
  none: "None",
  silent: "None"
}

export const SERVICE_VERSION = "0.1.0"

export type JwtAlgorithm = "HS256" | "EdDSA" | "ES256"

export type AicMode = "annotate" | "replace"

export const ENVIRONMENTS = ["development", "staging", "production"] as const
export type Environment = (typeof ENVIRONMENTS)[number]

/** Addresses that mean "every interface": not something a client can send media to. */
export const UNSPECIFIED_IPS: ReadonlySet<string> = new Set(["0.0.0.0", "::", "[::]"])

/**
 * A secret too guessable for production: fewer than 10 distinct characters, or under 96 bits by its
 * own character frequencies (length x Shannon entropy), e.g. one repeated character or `abab...`.
 */
export const isLowEntropy = (secret: string): boolean => {
  const counts = new Map<string, number>()
  for (const char of secret) counts.set(char, (counts.get(char) ?? 0) + 1)
  const length = [...secret].length
  let bitsPerChar = 0
  for (const n of counts.values()) bitsPerChar -= (n / length) * Math.log2(n / length)
  return counts.size < 10 || bitsPerChar * length < 96
}

/** `host:port` (IPv6 hosts in brackets); undefined when it is not one. */
const hostPort = (value: string): { readonly host: string; readonly port: number } | undefined => {
  const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(value.trim())
  const port = Number(match?.[3])
  const host = match?.[1] ?? match?.[2]
  return host === undefined || !Number.isInteger(port) || port < 1 || port > 65535 ? undefined : { host, port }
}

/** The node:crypto key type and curve each asymmetric algorithm needs. */
const keyShapes: Record<Exclude<JwtAlgorithm, "HS256">, { readonly type: string; readonly curve?: string; readonly text: string }> = {
  EdDSA: { type: "ed25519", text: "a PKCS#8 PEM Ed25519 private key (JWT_ALGORITHM=EdDSA)" },
  ES256: { type: "ec", curve: "prime256v1", text: "a PKCS#8 PEM P-256 private key (JWT_ALGORITHM=ES256)" }
}

/** Parses a PEM private key (literal `\n` allowed, as env files write it) and checks its type. */
const parsePrivateKey = (pem: string, algorithm: Exclude<JwtAlgorithm, "HS256">): KeyObject | undefined => {
  try {
    const key = createPrivateKey(pem.replaceAll("\\n", "\n"))
    const shape = keyShapes[algorithm]
    const matches = key.asymmetricKeyType === shape.type &&
      (shape.curve === undefined || key.asymmetricKeyDetails?.namedCurve === shape.curve)
    return matches ? key : undefined
  } catch {
    return undefined
  }
}

/** Reads one key through Effect's Config; a failure names the key, its (redacted) value and the expectation. */
const reader = (raw: RawConfig) => {
  const provider = ConfigProvider.fromEnvRecord(
    Object.fromEntries(Object.entries(raw).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ""))
  )
  const shown = (name: KeyName): string => {
    const value = raw[name]
    if (value === undefined || value === "") return "(unset)"
    return isSecret(name) ? "<redacted>" : JSON.stringify(value)
  }
  const fail = (name: KeyName, expected: string) => new InvalidConfig({ key: name, value: shown(name), expected })
  return {
    fail,
    read: <A>(name: KeyName, config: Config.Config<A>, expected: string, check?: (a: A) => boolean) =>
      config.parse(provider).pipe(
        Effect.mapError(() => fail(name, expected)),
        Effect.filterOrFail((a) => check === undefined || check(a), () => fail(name, expected))
      )
  }
}

const port = "a TCP/UDP port number 1-65535"
/** A comma-separated list (blank entries dropped). */
const list = (value: Option.Option<string>): ReadonlyArray<string> =>
  Option.match(value, { onNone: () => [], onSome: (v) => v.split(",").map((s) => s.trim()).filter((s) => s.length > 0) })
const positive = (n: number) => n > 0
const nonNegative = (n: number) => n >= 0
const boolean = "true or false"
const url = (protocols: ReadonlyArray<string>) => (value: string) => {
  try {
    return protocols.includes(new URL(value).protocol)
  } catch {
    return false
  }
}

/** `*`, or a web origin exactly as a browser sends it in `Origin` (scheme, host, port; no path). */
const isOrigin = (value: string) => {
  if (value === "*") return true
  try {
    const parsed = new URL(value)
    return (parsed.protocol === "http:" || parsed.protocol === "https:") && parsed.origin === value
  } catch {
    return false
  }
}

/** DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_PASSWORD, the seed's discrete keys, when DATABASE_URL is not given. */
const discreteDatabaseUrl = (read: ReturnType<typeof reader>["read"]) =>
  Effect.gen(function*() {
    const host = yield* read("DB_HOST", Config.option(Config.String("DB_HOST")), "a host name")
    if (Option.isNone(host)) return Option.none<Redacted.Redacted<string>>()
    const dbPort = yield* read("DB_PORT", Config.Port("DB_PORT").pipe(Config.withDefault(5432)), port)
    const name = yield* read("DB_NAME", Config.String("DB_NAME").pipe(Config.withDefault("auralink")), "a database name")
    const user = yield* read("DB_USER", Config.String("DB_USER").pipe(Config.withDefault("postgres")), "a user name")
    const password = yield* read("DB_PASSWORD", Config.option(Config.Redacted("DB_PASSWORD")), "a string")
    const target = new URL(`postgresql://${host.value}:${dbPort}/${encodeURIComponent(name)}`)
    target.username = user
    if (Option.isSome(password)) target.password = Redacted.value(password.value)
    return Option.some(Redacted.make(target.toString()))
  })

/** REDIS_HOST/REDIS_PORT (the seed's `redis { host, port }`), when REDIS_URL is not given. */
const discreteRedisUrl = (read: ReturnType<typeof reader>["read"]) =>
  Effect.gen(function*() {
    const host = yield* read("REDIS_HOST", Config.option(Config.String("REDIS_HOST")), "a host name")
    if (Option.isNone(host)) return Option.none<Redacted.Redacted<string>>()
    const redisPort = yield* read("REDIS_PORT", Config.Port("REDIS_PORT").pipe(Config.withDefault(6379)), port)
    return Option.some(Redacted.make(`redis://${host.value}:${redisPort}`))
  })

/** Decodes and checks every setting; the first invalid key stops start-up. */
export const decodeSettings = (raw: RawConfig): Effect.Effect<Settings, InvalidConfig> =>
  Effect.gen(function*() {
    const { fail, read } = reader(raw)
    const optionalString = (name: KeyName) => read(name, Config.option(Config.String(name)), "a string")
    const optionalSecret = (name: KeyName) => read(name, Config.option(Config.Redacted(name)), "a string")
    const int = (name: KeyName, fallback: number, expected: string, check: (n: number) => boolean) =>
      read(name, Config.Int(name).pipe(Config.withDefault(fallback)), expected, check)
    const flag = (name: KeyName, fallback: boolean) =>
      read(name, Config.Boolean(name).pipe(Config.withDefault(fallback)), boolean)
    const string = (name: KeyName, fallback: string) =>
      read(name, Config.String(name).pipe(Config.withDefault(fallback)), "a non-empty string", (s) => s.length > 0)

    const environment = yield* read(
      "ENVIRONMENT",
      Config.Literals(ENVIRONMENTS, "ENVIRONMENT").pipe(Config.withDefault<Environment>("development")),
      `one of ${ENVIRONMENTS.join(", ")} (exactly, lower case)`
    )
    const production = environment === "production"
    const levelText = yield* string("LOG_LEVEL", "info")
    const level = logLevels[levelText.toLowerCase()]
    if (level === undefined) return yield* fail("LOG_LEVEL", `one of ${Object.keys(logLevels).join(", ")}`)

    const rtcMinPort = yield* int("RTC_MIN_PORT", 10000, port, (n) => n >= 1 && n <= 65535)
    const rtcMaxPort = yield* int("RTC_MAX_PORT", 10100, `${port}, at least RTC_MIN_PORT`, (n) => n >= rtcMinPort && n <= 65535)
    const poolMin = yield* int("PGPOOL_MIN_INGRESS", 5, "a whole number >= 0", nonNegative)
    const poolMax = yield* int("PGPOOL_MAX_INGRESS", 20, "a whole number >= 1 and >= PGPOOL_MIN_INGRESS", (n) => n >= 1 && n >= poolMin)
    const reconnectBaseMs = yield* int("REDIS_RECONNECT_BASE_MS", 100, "milliseconds > 0", positive)
    const corsOrigins = list(yield* optionalString("CORS_ORIGINS"))
    if (!corsOrigins.every(isOrigin)) return yield* fail("CORS_ORIGINS", "a comma-separated list of origins such as https://app.example.com, or *")
    const headersTimeoutMs = yield* int("HTTP_HEADERS_TIMEOUT_MS", 10_000, "milliseconds > 0", positive)
    // Node refuses a headers timeout longer than the request timeout.
    const requestTimeoutMs = yield* int("HTTP_REQUEST_TIMEOUT_MS", 30_000, "milliseconds > 0, at least HTTP_HEADERS_TIMEOUT_MS", (n) => n >= headersTimeoutMs)

    const databaseUrl = yield* optionalSecret("DATABASE_URL").pipe(
      Effect.flatMap((given) => Option.isSome(given) ? Effect.succeed(given) : discreteDatabaseUrl(read))
    )
    if (Option.isSome(databaseUrl) && !url(["postgres:", "postgresql:"])(Redacted.value(databaseUrl.value))) {
      return yield* fail("DATABASE_URL", "a postgres:// or postgresql:// URL")
    }
    const redisUrl = yield* optionalSecret("REDIS_URL").pipe(
      Effect.flatMap((given) => Option.isSome(given) ? Effect.succeed(given) : discreteRedisUrl(read))
    )
    if (Option.isSome(redisUrl) && !url(["redis:", "rediss:"])(Redacted.value(redisUrl.value))) {
      return yield* fail("REDIS_URL", "a redis:// or rediss:// URL")
    }
    const jwt = yield* optionalSecret("JWT_SECRET")
    if (Option.isSome(jwt) && Redacted.value(jwt.value).length < 32) {
      return yield* fail("JWT_SECRET", "at least 32 characters")
    }
    const algorithm = yield* read(
      "JWT_ALGORITHM",
      Config.Literals(["HS256", "EdDSA", "ES256"], "JWT_ALGORITHM").pipe(Config.withDefault<JwtAlgorithm>("HS256")),
      "one of HS256, EdDSA, ES256"
    )
    const pem = yield* optionalSecret("JWT_PRIVATE_KEY")
    let privateKey = Option.none<KeyObject>()
    if (algorithm !== "HS256") {
      const parsed = Option.isSome(pem) ? parsePrivateKey(Redacted.value(pem.value), algorithm) : undefined
      if (parsed === undefined) return yield* fail("JWT_PRIVATE_KEY", keyShapes[algorithm].text)
      privateKey = Option.some(parsed)
    }
    if (Option.isNone(jwt) && production && algorithm === "HS256") {
      return yield* fail("JWT_SECRET", "a secret of at least 32 characters (required when ENVIRONMENT=production)")
    }
    if (Option.isSome(jwt) && production && algorithm === "HS256" && isLowEntropy(Redacted.value(jwt.value))) {
      return yield* fail("JWT_SECRET", "a random secret when ENVIRONMENT=production: at least 10 distinct characters and ~96 bits (e.g. openssl rand -base64 48)")
    }
    const provisioningKey = yield* optionalSecret("AUTH_PROVISIONING_KEY")
    if (Option.isSome(provisioningKey) && production && Redacted.value(provisioningKey.value).length < 32) {
      return yield* fail("AUTH_PROVISIONING_KEY", "at least 32 characters when ENVIRONMENT=production")
    }
    // Development only: a first run with no configuration can use the demo (the key is logged once at start).
    const provisioningKeyGenerated = Option.isNone(provisioningKey) && environment === "development"
    const listenIp = yield* string("MEDIASOUP_LISTEN_IP", "0.0.0.0")
    const givenAnnouncedIp = yield* optionalString("MEDIASOUP_ANNOUNCED_IP")
    const announcedIpDefaulted = Option.isNone(givenAnnouncedIp) && UNSPECIFIED_IPS.has(listenIp) && environment === "development"
    if (Option.isNone(givenAnnouncedIp) && UNSPECIFIED_IPS.has(listenIp) && production) {
      return yield* fail("MEDIASOUP_ANNOUNCED_IP", `the IP clients send media to (required when ENVIRONMENT=production and MEDIASOUP_LISTEN_IP=${listenIp})`)
    }
    const endpoint = (name: KeyName) =>
      optionalString(name).pipe(
        Effect.filterOrFail(Option.match({ onNone: () => true, onSome: url(["http:", "https:"]) }), () =>
          fail(name, "an http:// or https:// URL"))
      )

    return {
      service: {
        name: yield* string("SERVICE_NAME", "ingress-egress"),
        version: SERVICE_VERSION,
        environment,
        region: yield* string("REGION", "local"),
        bridgeId: yield* string("BRIDGE_ID", "bridge-local-01"),
        dataDir: yield* string("DATA_DIR", ".data"),
        shutdownTimeoutMs: yield* int("SHUTDOWN_TIMEOUT_MS", 30_000, "milliseconds > 0", positive)
      },
      http: {
        host: yield* string("HOST", "0.0.0.0"),
        port: yield* int("PORT", 8080, port, (n) => n >= 0 && n <= 65535),
        bodyLimitBytes: yield* int("HTTP_BODY_LIMIT_BYTES", 1024 * 1024, "bytes > 0", positive),
        metricsPort: yield* read("METRICS_PORT", Config.option(Config.Port("METRICS_PORT")), port),
        headersTimeoutMs,
        requestTimeoutMs,
        keepAliveTimeoutMs: yield* int("HTTP_KEEPALIVE_TIMEOUT_MS", 5000, "milliseconds > 0", positive),
        maxConnections: yield* int("HTTP_MAX_CONNECTIONS", 1024, "a whole number > 0", positive),
        corsOrigins
      },
      grpc: { port: yield* int("GRPC_PORT", 50051, port, (n) => n >= 0 && n <= 65535) },
      log: { level },
      tracing: { otlpEndpoint: yield* endpoint("OTEL_EXPORTER_OTLP_ENDPOINT") },
      features: {
        aic: yield* flag("ENABLE_AIC", true),
        sip: yield* flag("ENABLE_SIP", false),
        rtmp: yield* flag("ENABLE_RTMP", false)
      },
      demo: { enabled: yield* flag("DEMO_ENABLED", environment === "development") },
      database: {
        url: databaseUrl,
        poolMin,
        poolMax,
        connectTimeoutMs: yield* int("PG_CONN_TIMEOUT_MS", 2000, "milliseconds > 0", positive),
        idleTimeoutMs: yield* int("PG_IDLE_TIMEOUT_MS", 10_000, "milliseconds > 0", positive),
        connectRetries: yield* int("PG_CONNECT_RETRIES", 3, "a whole number >= 0", nonNegative)
      },
      redis: {
        url: redisUrl,
        reconnectBaseMs,
        reconnectMaxMs: yield* int("REDIS_RECONNECT_MAX_MS", 1000, "milliseconds >= REDIS_RECONNECT_BASE_MS", (n) => n >= reconnectBaseMs),
        commandTimeoutMs: yield* int("REDIS_COMMAND_TIMEOUT_MS", 300, "milliseconds > 0", positive)
      },
      auth: {
        jwtSecret: Option.getOrElse(jwt, () => Redacted.make(randomBytes(32).toString("base64url"))),
        jwtSecretEphemeral: Option.isNone(jwt),
        algorithm,
        privateKey,
        keyId: yield* optionalString("JWT_KEY_ID"),
        issuer: yield* string("JWT_ISSUER", "auralink-ingress-egress"),
        audience: yield* string("JWT_AUDIENCE", "auralink"),
        accessTokenTtlSeconds: yield* int("ACCESS_TOKEN_TTL_SECONDS", 900, "seconds > 0", positive),
        refreshTokenTtlSeconds: yield* int("REFRESH_TOKEN_TTL_SECONDS", 2_592_000, "seconds > 0", positive),
        provisioningKey: provisioningKeyGenerated ? Option.some(Redacted.make(randomBytes(24).toString("base64url"))) : provisioningKey,
        provisioningKeyGenerated
      },
      sessions: {
        idleTimeoutSeconds: yield* int("SESSION_IDLE_TIMEOUT_SECONDS", 300, "seconds 10-86400", (n) => n >= 10 && n <= 86_400),
        contextCap: yield* int("SESSION_CONTEXT_CAP", 100, "a whole number 1-10000", (n) => n >= 1 && n <= 10_000),
        sweepIntervalMs: yield* int("SESSION_SWEEP_INTERVAL_MS", 10_000, "milliseconds > 0", positive),
        cacheTtlMs: yield* int("SESSION_CACHE_TTL_MS", 5000, "milliseconds >= 0 (0 disables the cache)", nonNegative),
        cacheMax: yield* int("SESSION_CACHE_MAX", 10_000, "a whole number >= 0 (0 disables the cache)", nonNegative)
      },
      limits: {
        pendingSessionTimeoutSeconds: yield* int("PENDING_SESSION_TIMEOUT_SECONDS", 60, "seconds 1-86400", (n) => n >= 1 && n <= 86_400),
        maxPendingSessionsPerUser: yield* int("MAX_PENDING_SESSIONS_PER_USER", 8, "a whole number > 0", positive),
        maxPendingSessionsPerDevice: yield* int("MAX_PENDING_SESSIONS_PER_DEVICE", 8, "a whole number > 0", positive),
        maxOpenSessionsPerUser: yield* int("MAX_OPEN_SESSIONS_PER_USER", 16, "a whole number > 0", positive),
        maxOpenSessionsPerDevice: yield* int("MAX_OPEN_SESSIONS_PER_DEVICE", 8, "a whole number > 0", positive),
        maxTransportsPerSession: yield* int("MAX_TRANSPORTS_PER_SESSION", 4, "a whole number > 0", positive),
        maxProducersPerSession: yield* int("MAX_PRODUCERS_PER_SESSION", 8, "a whole number > 0", positive),
        maxSseStreamsPerSession: yield* int("MAX_SSE_STREAMS_PER_SESSION", 4, "a whole number > 0", positive),
        maxSseStreamsPerUser: yield* int("MAX_SSE_STREAMS_PER_USER", 16, "a whole number > 0", positive)
      },
      rateLimit: {
        authPerMinute: yield* int("RATE_LIMIT_AUTH_PER_MINUTE", 100, "a whole number > 0", positive),
        sessionPerMinute: yield* int("RATE_LIMIT_SESSION_PER_MINUTE", 300, "a whole number > 0", positive),
        defaultPerMinute: yield* int("RATE_LIMIT_DEFAULT_PER_MINUTE", 500, "a whole number > 0", positive)
      },
      media: {
        rtcMinPort,
        rtcMaxPort,
        listenIp,
        announcedIp: announcedIpDefaulted ? Option.some("127.0.0.1") : givenAnnouncedIp,
        announcedIpDefaulted,
        workers: yield* int("MEDIASOUP_WORKERS", Math.min(availableParallelism(), rtcMaxPort - rtcMinPort + 1), "a whole number >= 1, at most the RTC port count", (n) => n >= 1 && n <= rtcMaxPort - rtcMinPort + 1),
        logLevel: yield* read(
          "MEDIASOUP_LOG_LEVEL",
          Config.Literals(["debug", "warn", "error", "none"], "MEDIASOUP_LOG_LEVEL").pipe(Config.withDefault<"debug" | "warn" | "error" | "none">("warn")),
          "one of debug, warn, error, none"
        ),
        logTags: list(yield* optionalString("MEDIASOUP_LOG_TAGS")),
        workerProbeIntervalMs: yield* int("MEDIASOUP_WORKER_PROBE_INTERVAL_MS", 1000, "milliseconds > 0", positive),
        workerTimeoutMs: yield* int("MEDIASOUP_WORKER_TIMEOUT_MS", 2000, "milliseconds > 0", positive),
        stunUrls: list(yield* optionalString("STUN_URLS")),
        turnUrls: list(yield* optionalString("TURN_URLS")),
        turnUsername: yield* optionalString("TURN_USERNAME"),
        turnCredential: yield* optionalSecret("TURN_CREDENTIAL")
      },
      audio: {
        pipelineRestarts: yield* int("AUDIO_PIPELINE_RESTARTS", 5, "a whole number >= 0", nonNegative),
        pipelineRestartBaseMs: yield* int("AUDIO_PIPELINE_RESTART_BASE_MS", 200, "milliseconds > 0", positive),
        pipelineRestartMaxMs: yield* int("AUDIO_PIPELINE_RESTART_MAX_MS", 5000, "milliseconds > 0", positive),
        // 0 by default: on the main thread the server-added p99 is a few ms lower (no thread hop);
        // threads raise the sessions one process carries (bench/audio-ingest, README).
        decodeThreads: yield* int("AUDIO_DECODE_THREADS", 0, "a whole number 0-64", (n) => n >= 0 && n <= 64),
        // Waiting costs latency only while a hole is open; in-order packets pass at once.
        jitterBufferMs: yield* int("AUDIO_JITTER_BUFFER_MS", 60, "milliseconds 0-1000", (n) => n >= 0 && n <= 1000)
      },
      asr: {
        gatewayUrl: yield* optionalString("ASR_GATEWAY_URL"),
        deadlineMs: yield* int("ASR_DEADLINE_MS", 5000, "milliseconds > 0", positive),
        reconnectBaseMs: yield* int("ASR_RECONNECT_BASE_MS", 100, "milliseconds > 0", positive),
        reconnectMaxMs: yield* int("ASR_RECONNECT_MAX_MS", 5000, "milliseconds > 0", positive),
        breakerFailures: yield* int("ASR_BREAKER_FAILURES", 5, "a whole number > 0", positive),
        breakerResetMs: yield* int("ASR_BREAKER_RESET_MS", 60_000, "milliseconds > 0", positive),
        replayBufferMs: yield* int("ASR_REPLAY_BUFFER_MS", 5000, "milliseconds >= 0", nonNegative),
        queueCapacity: yield* int("ASR_QUEUE_CAPACITY", 50, "a whole number > 0", positive)
      },
      aiCore: {
        grpcUrl: yield* optionalString("AI_CORE_GRPC_URL"),
        deadlineMs: yield* int("AI_CORE_DEADLINE_MS", 10, "milliseconds > 0", positive),
        breakerFailures: yield* int("AI_CORE_BREAKER_FAILURES", 5, "a whole number > 0", positive),
        breakerResetMs: yield* int("AI_CORE_BREAKER_RESET_MS", 60_000, "milliseconds > 0", positive),
        reconnectBaseMs: yield* int("AI_CORE_RECONNECT_BASE_MS", 100, "milliseconds > 0", positive),
        reconnectMaxMs: yield* int("AI_CORE_RECONNECT_MAX_MS", 5000, "milliseconds > 0", positive),
        maxInFlight: yield* int("AI_CORE_MAX_IN_FLIGHT", 32, "a whole number > 0", positive)
      },
      aic: {
        mode: yield* read(
          "AIC_MODE",
          Config.Literals(["annotate", "replace"], "AIC_MODE").pipe(Config.withDefault<AicMode>("annotate")),
          "annotate or replace"
        ),
        extensionId: yield* int("AIC_EXTENSION_ID", 14, "an RFC 8285 one-byte extension id 1-14", (n) => n >= 1 && n <= 14),
        forwardTarget: yield* optionalString("AIC_FORWARD_TARGET").pipe(Effect.flatMap((given) => {
          if (Option.isNone(given)) return Effect.succeed(Option.none())
          const target = hostPort(given.value)
          return target === undefined ? Effect.fail(fail("AIC_FORWARD_TARGET", "host:port (UDP)")) : Effect.succeed(Option.some(target))
        })),
        queueCapacity: yield* int("AIC_QUEUE_CAPACITY", 4096, "a whole number > 0", positive)
      },
      dashboard: { url: yield* endpoint("DASHBOARD_URL"), apiKey: yield* optionalSecret("DASHBOARD_API_KEY") },
      webrtcServer: { url: yield* endpoint("WEBRTC_SERVER_URL"), apiKey: yield* optionalSecret("WEBRTC_API_KEY") }
    }
  })
