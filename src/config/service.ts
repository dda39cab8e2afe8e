import { Effect, Option } from "effect"
import type { LogLevel } from "effect/LogLevel"
import { count, key, listenPort, ms, rule } from "./key.ts"

export const SERVICE_VERSION = "0.1.0"

export const ENVIRONMENTS = ["development", "staging", "production"] as const
export type Environment = (typeof ENVIRONMENTS)[number]

/** Read by the auth and media settings too: production is stricter, development fills in what a first run lacks. */
export const environment = key("ENVIRONMENT", "auralink.service.environment")
  .literal(ENVIRONMENTS, "development", `one of ${ENVIRONMENTS.join(", ")} (exactly, lower case)`)

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

const LOG_LEVEL = key("LOG_LEVEL", "auralink.log.level")
const logLevel = Effect.flatMap(LOG_LEVEL.text("info"), (text) => {
  const level = logLevels[text.toLowerCase()]
  return level === undefined ? LOG_LEVEL.fail(`one of ${Object.keys(logLevels).join(", ")}`) : Effect.succeed(level)
})

const READY_CRITICAL = key("READY_CRITICAL_DEPENDENCIES", "auralink.service.ready_critical_dependencies")

/** Unset or empty: each dependency's default (postgres, and redis when configured); else exactly these names. */
const readyCritical = Effect.flatMap(READY_CRITICAL.optional(), (given) =>
  Option.isNone(given)
    ? Effect.succeed(Option.none<ReadonlyArray<string>>())
    : Effect.map(READY_CRITICAL.list(rule("comma-separated dependency names such as postgres,redis", (name) => /^[a-z][a-z0-9_]*$/.test(name))), Option.some))

export const service = Effect.all({
  name: key("SERVICE_NAME", "auralink.service.name").text("ingress-egress"),
  version: Effect.succeed(SERVICE_VERSION),
  environment,
  region: key("REGION", "auralink.service.region").text("local"),
  bridgeId: key("BRIDGE_ID", "auralink.service.bridge_id").text("bridge-local-01"),
  dataDir: key("DATA_DIR", "auralink.service.data_dir").text(".data"),
  shutdownTimeoutMs: key("SHUTDOWN_TIMEOUT_MS", "auralink.service.shutdown_timeout_ms").int(30_000, ms),
  /** The dependencies whose being down turns `/ready` to 503. */
  readyCritical
})

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

const headersTimeoutMs = key("HTTP_HEADERS_TIMEOUT_MS", "auralink.http.headers_timeout_ms").int(10_000, ms)

export const http = Effect.all({
  host: key("HOST", "auralink.http.host").text("0.0.0.0"),
  port: key("PORT", "auralink.http.port").int(8080, listenPort),
  bodyLimitBytes: key("HTTP_BODY_LIMIT_BYTES", "auralink.http.body_limit_bytes").int(1024 * 1024, rule("bytes > 0", (n) => n > 0)),
  metricsPort: key("METRICS_PORT", "auralink.http.metrics_port").optionalPort(),
  /** Time to receive a request's headers, and the whole request (not the response: SSE streams are not cut). */
  headersTimeoutMs,
  // Node refuses a headers timeout longer than the request timeout.
  requestTimeoutMs: Effect.flatMap(headersTimeoutMs, (headers) =>
    key("HTTP_REQUEST_TIMEOUT_MS", "auralink.http.request_timeout_ms")
      .int(30_000, rule("milliseconds > 0, at least HTTP_HEADERS_TIMEOUT_MS", (n) => n >= headers))),
  /** Idle time before a kept-alive connection is closed. */
  keepAliveTimeoutMs: key("HTTP_KEEPALIVE_TIMEOUT_MS", "auralink.http.keepalive_timeout_ms").int(5000, ms),
  /** Open connections per listener; more are closed at once. */
  maxConnections: key("HTTP_MAX_CONNECTIONS", "auralink.http.max_connections").int(1024, count),
  /** Web origins (`https://app.example.com`) allowed to call the API from a browser; `*` for any; empty: none. */
  corsOrigins: key("CORS_ORIGINS", "auralink.http.cors_origins")
    .list(rule("a comma-separated list of origins such as https://app.example.com, or *", isOrigin))
})

export const grpc = Effect.all({ port: key("GRPC_PORT", "auralink.grpc.port").int(50051, listenPort) })

export const log = Effect.all({ level: logLevel })

export const tracing = Effect.all({ otlpEndpoint: key("OTEL_EXPORTER_OTLP_ENDPOINT", "auralink.tracing.otlp_endpoint").endpoint() })

/** A feature the seed names that is not built yet: `true` stops start-up rather than being silently ignored. */
const notBuilt = (env: string, hocon: string, what: string) => {
  const flag = key(env, hocon)
  return Effect.flatMap(flag.flag(false), (on) => on ? flag.fail(`false: ${what} is not built yet (remove the key or set it to false)`) : Effect.succeed(false))
}

export const features = Effect.all({
  aic: key("ENABLE_AIC", "auralink.features.enable_aic").flag(true),
  sip: notBuilt("ENABLE_SIP", "auralink.features.enable_sip", "SIP ingress"),
  rtmp: notBuilt("ENABLE_RTMP", "auralink.features.enable_rtmp", "RTMP ingress")
})

export const demo = Effect.all({
  /** The browser demo at /demo (prebuilt by scripts/build-demo.ts); default on in development only. */
  enabled: Effect.flatMap(environment, (env) => key("DEMO_ENABLED", "auralink.demo.enabled").flag(env === "development"))
})
