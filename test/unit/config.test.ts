import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Redacted } from "effect"
import { generateKeyPairSync, randomBytes } from "node:crypto"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { decodeSettings, isLowEntropy } from "../../src/config/settings.ts"
import { loadRawConfig } from "../../src/config/source.ts"

/** A production configuration that starts: a random JWT secret and an announced media address. */
const STRONG_SECRET = "Zx4mQ9vT2kLp7RwE1nYb6HcJ3sGd8FaU0oIt5eVr"
const PRODUCTION = { ENVIRONMENT: "production", JWT_SECRET: STRONG_SECRET, MEDIASOUP_ANNOUNCED_IP: "192.0.2.10" } as const

const SEED_CONF = fileURLToPath(new URL("../fixtures/seed-auralink.conf", import.meta.url))

const load = (env: Record<string, string>) => Effect.flatMap(loadRawConfig(env), decodeSettings)
const failure = (env: Record<string, string>) => Effect.flip(load(env))

const hoconFile = (text: string) => {
  const path = join(mkdtempSync(join(tmpdir(), "auralink-conf-")), "auralink.conf")
  writeFileSync(path, text)
  return path
}

describe("configuration", () => {
  it.effect("has a default for every key, so the service starts with no environment", () =>
    Effect.gen(function*() {
      const settings = yield* load({ AURALINK_CONFIG: hoconFile("auralink {}") })
      assert.strictEqual(settings.http.port, 8080)
      assert.strictEqual(settings.grpc.port, 50051)
      assert.isTrue(Option.isNone(settings.http.metricsPort))
      assert.isTrue(Option.isNone(settings.database.url))
      assert.isTrue(Option.isNone(settings.redis.url))
      assert.deepStrictEqual(
        [settings.database.poolMin, settings.database.poolMax, settings.database.connectTimeoutMs, settings.database.idleTimeoutMs],
        [5, 20, 2000, 10_000]
      )
      assert.deepStrictEqual([settings.media.rtcMinPort, settings.media.rtcMaxPort], [10000, 10100])
      assert.deepStrictEqual(
        [settings.media.webRtcServer, settings.media.rtcPort, settings.media.iceConsentTimeoutSeconds, settings.media.consentGraceMs],
        [true, 40000, 30, 5000]
      )
      assert.strictEqual(settings.log.level, "Info")
      assert.strictEqual(settings.service.shutdownTimeoutMs, 30_000)
      assert.isTrue(settings.auth.jwtSecretEphemeral)
      assert.isTrue(Redacted.value(settings.auth.jwtSecret).length >= 32)
      assert.deepStrictEqual(
        [settings.auth.issuer, settings.auth.audience, settings.auth.accessTokenTtlSeconds, settings.auth.refreshTokenTtlSeconds],
        ["auralink-ingress-egress", "auralink", 900, 2_592_000]
      )
      // Development (the default): a provisioning key made for this process, so the demo works with no configuration.
      assert.isTrue(settings.auth.provisioningKeyGenerated)
      assert.isTrue(Option.isSome(settings.auth.provisioningKey))
      assert.deepStrictEqual(settings.media.announcedIp, Option.some("127.0.0.1"))
    }))

  it.effect("HTTP listener limits: API-suited defaults; a request timeout shorter than the headers timeout names its key", () =>
    Effect.gen(function*() {
      const { http } = yield* load({ AURALINK_CONFIG: hoconFile("auralink {}") })
      assert.deepStrictEqual([http.headersTimeoutMs, http.requestTimeoutMs, http.keepAliveTimeoutMs, http.maxConnections], [10_000, 30_000, 5000, 1024])
      const set = yield* load({
        AURALINK_CONFIG: hoconFile("auralink { http { headers_timeout_ms = 2000, max_connections = 64 } }"),
        HTTP_REQUEST_TIMEOUT_MS: "4000"
      })
      assert.deepStrictEqual([set.http.headersTimeoutMs, set.http.requestTimeoutMs, set.http.maxConnections], [2000, 4000, 64])
      assert.strictEqual((yield* failure({ HTTP_HEADERS_TIMEOUT_MS: "20000", HTTP_REQUEST_TIMEOUT_MS: "5000" })).key, "HTTP_REQUEST_TIMEOUT_MS")
      assert.strictEqual((yield* failure({ HTTP_MAX_CONNECTIONS: "0" })).key, "HTTP_MAX_CONNECTIONS")
    }))

  it.effect("CORS_ORIGINS: none by default; exact origins or *; a URL with a path is refused naming the key", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual((yield* load({ AURALINK_CONFIG: hoconFile("auralink {}") })).http.corsOrigins, [])
      const set = yield* load({ AURALINK_CONFIG: hoconFile("auralink {}"), CORS_ORIGINS: "https://app.example.com, http://localhost:5173" })
      assert.deepStrictEqual(set.http.corsOrigins, ["https://app.example.com", "http://localhost:5173"])
      assert.deepStrictEqual((yield* load({ AURALINK_CONFIG: hoconFile("auralink {}"), CORS_ORIGINS: "*" })).http.corsOrigins, ["*"])
      for (const bad of ["https://app.example.com/", "app.example.com", "ftp://files.example.com"]) {
        assert.strictEqual((yield* failure({ CORS_ORIGINS: bad })).key, "CORS_ORIGINS", bad)
      }
    }))

  it.effect("reads the auth keys; the provisioning key is a secret and a bad TTL names its key", () =>
    Effect.gen(function*() {
      const settings = yield* load({ AUTH_PROVISIONING_KEY: "op-key", ACCESS_TOKEN_TTL_SECONDS: "60", JWT_AUDIENCE: "aud-x" })
      assert.strictEqual(Option.map(settings.auth.provisioningKey, Redacted.value).pipe(Option.getOrUndefined), "op-key")
      assert.notInclude(String(settings.auth.provisioningKey), "op-key")
      assert.strictEqual(settings.auth.accessTokenTtlSeconds, 60)
      assert.strictEqual(settings.auth.audience, "aud-x")
      const error = yield* failure({ REFRESH_TOKEN_TTL_SECONDS: "0" })
      assert.strictEqual(error.key, "REFRESH_TOKEN_TTL_SECONDS")
    }))

  it.effect("reads the names users of the earlier system know", () =>
    Effect.gen(function*() {
      const settings = yield* load({
        PORT: "9000",
        GRPC_PORT: "9001",
        METRICS_PORT: "9002",
        DATABASE_URL: "postgres://u:pw@db:5432/x",
        PGPOOL_MAX_INGRESS: "7",
        PG_CONN_TIMEOUT_MS: "1500",
        PG_IDLE_TIMEOUT_MS: "3000",
        PG_CONNECT_RETRIES: "9",
        REDIS_URL: "redis://cache:6379",
        JWT_SECRET: "0123456789abcdef0123456789abcdef",
        LOG_LEVEL: "debug",
        RTC_MIN_PORT: "20000",
        RTC_MAX_PORT: "20100",
        MEDIASOUP_LISTEN_IP: "10.0.0.5",
        MEDIASOUP_ANNOUNCED_IP: "203.0.113.7",
        ASR_GATEWAY_URL: "asr:50052",
        BRIDGE_ID: "bridge-eu-1",
        DASHBOARD_API_KEY: "dash",
        WEBRTC_API_KEY: "lk",
        ENABLE_AIC: "false",
        ENABLE_SIP: "false",
        ENABLE_RTMP: "false"
      })
      assert.deepStrictEqual([settings.http.port, settings.grpc.port], [9000, 9001])
      assert.deepStrictEqual(settings.http.metricsPort, Option.some(9002))
      assert.strictEqual(Redacted.value(Option.getOrThrow(settings.database.url)), "postgres://u:pw@db:5432/x")
      assert.deepStrictEqual(
        [settings.database.poolMax, settings.database.connectTimeoutMs, settings.database.idleTimeoutMs, settings.database.connectRetries],
        [7, 1500, 3000, 9]
      )
      assert.strictEqual(settings.log.level, "Debug")
      assert.deepStrictEqual(settings.media.announcedIp, Option.some("203.0.113.7"))
      assert.strictEqual(settings.service.bridgeId, "bridge-eu-1")
      assert.deepStrictEqual(settings.features, { aic: false, sip: false, rtmp: false })
      assert.isFalse(settings.auth.jwtSecretEphemeral)
      assert.strictEqual(Redacted.value(Option.getOrThrow(settings.dashboard.apiKey)), "dash")
    }))

  it.effect("reads the seed-shaped HOCON file, and the environment wins over it", () =>
    Effect.gen(function*() {
      const path = hoconFile(`
        auralink {
          service { name = "ingress-egress", region = "us-west-2", environment = "staging", bridge_id = \${?BRIDGE_ID} }
          features { enable_aic = false, enable_sip = false, enable_rtmp = false }
          ai_core { grpc_url = "auralink-ai-core:50051" }
          webrtc_server { url = "http://auralink-webrtc:7880", api_key = "from-file" }
          database { url = "jdbc:postgresql://postgres:5432/auralink", username = "auralink" }
          redis { host = "redis", port = 6379 }
          http { port = 8181 }
        }`)
      const settings = yield* load({ AURALINK_CONFIG: path, PORT: "9191", BRIDGE_ID: "from-env" })
      assert.strictEqual(settings.http.port, 9191)
      assert.strictEqual(settings.service.region, "us-west-2")
      assert.strictEqual(settings.service.environment, "staging")
      assert.strictEqual(settings.service.bridgeId, "from-env")
      assert.deepStrictEqual(settings.features, { aic: false, sip: false, rtmp: false })
      assert.deepStrictEqual(settings.aiCore.grpcUrl, Option.some("auralink-ai-core:50051"))
      assert.strictEqual(Redacted.value(Option.getOrThrow(settings.webrtcServer.apiKey)), "from-file")
      assert.strictEqual(Redacted.value(Option.getOrThrow(settings.database.url)), "postgresql://auralink@postgres:5432/auralink")
      assert.strictEqual(Redacted.value(Option.getOrThrow(settings.redis.url)), "redis://redis:6379")
    }))

  it.effect("builds the database URL from the discrete keys when DATABASE_URL is absent", () =>
    Effect.gen(function*() {
      const settings = yield* load({ DB_HOST: "db.internal", DB_PORT: "6543", DB_NAME: "aura", DB_USER: "svc", DB_PASSWORD: "p@ss" })
      assert.strictEqual(Redacted.value(Option.getOrThrow(settings.database.url)), "postgresql://svc:p%40ss@db.internal:6543/aura")
    }))

  it.effect("rejects a bad value with one line naming the key, the value and what was expected", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [Record<string, string>, string, string]> = [
        [{ PORT: "eighty" }, "PORT", "\"eighty\""],
        [{ PORT: "70000" }, "PORT", "\"70000\""],
        [{ GRPC_PORT: "-1" }, "GRPC_PORT", "\"-1\""],
        [{ METRICS_PORT: "0x" }, "METRICS_PORT", "\"0x\""],
        [{ LOG_LEVEL: "loud" }, "LOG_LEVEL", "\"loud\""],
        [{ ENABLE_AIC: "maybe" }, "ENABLE_AIC", "\"maybe\""],
        [{ PGPOOL_MAX_INGRESS: "0" }, "PGPOOL_MAX_INGRESS", "\"0\""],
        [{ PG_CONN_TIMEOUT_MS: "-5" }, "PG_CONN_TIMEOUT_MS", "\"-5\""],
        [{ RTC_MIN_PORT: "20000", RTC_MAX_PORT: "10000" }, "RTC_MAX_PORT", "\"10000\""],
        // The WebRtcServer ports (one per worker) may not fall into the range plain transports use.
        [{ RTC_PORT: "10050" }, "RTC_PORT", "\"10050\""],
        [{ RTC_PORT: "9999", MEDIASOUP_WORKERS: "2" }, "RTC_PORT", "\"9999\""],
        [{ RTC_PORT: "65535", MEDIASOUP_WORKERS: "2" }, "RTC_PORT", "\"65535\""],
        [{ MEDIASOUP_ICE_CONSENT_TIMEOUT_SECONDS: "5" }, "MEDIASOUP_ICE_CONSENT_TIMEOUT_SECONDS", "\"5\""],
        [{ MEDIASOUP_ICE_CONSENT_TIMEOUT_SECONDS: "61" }, "MEDIASOUP_ICE_CONSENT_TIMEOUT_SECONDS", "\"61\""],
        [{ MEDIA_CONSENT_GRACE_MS: "-1" }, "MEDIA_CONSENT_GRACE_MS", "\"-1\""],
        [{ REDIS_URL: "http://cache" }, "REDIS_URL", "<redacted>"],
        [{ DB_HOST: "db host" }, "DB_HOST", "\"db host\""],
        [{ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318" }, "OTEL_EXPORTER_OTLP_ENDPOINT", "\"collector:4318\""]
      ]
      for (const [env, key, shown] of cases) {
        const error = yield* failure(env)
        assert.strictEqual(error.key, key)
        assert.include(error.message, `${key}=${shown}: expected `)
        assert.notInclude(error.message, "\n")
      }
    }))

  it.effect("never shows a secret's value in the error", () =>
    Effect.gen(function*() {
      const database = yield* failure({ DATABASE_URL: "mysql://root:hunter2@db/x" })
      assert.strictEqual(database.key, "DATABASE_URL")
      assert.notInclude(database.message, "hunter2")
      const jwt = yield* failure({ JWT_SECRET: "short-hunter2" })
      assert.strictEqual(jwt.key, "JWT_SECRET")
      assert.notInclude(jwt.message, "hunter2")
      assert.include(jwt.message, "<redacted>")
    }))

  it.effect("checks the JWT signing key against JWT_ALGORITHM, never echoing the key", () =>
    Effect.gen(function*() {
      const ed = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString()
      const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString()
      assert.strictEqual((yield* failure({ JWT_ALGORITHM: "RS256" })).key, "JWT_ALGORITHM")
      const missing = yield* failure({ JWT_ALGORITHM: "EdDSA" })
      assert.strictEqual(missing.key, "JWT_PRIVATE_KEY")
      assert.include(missing.message, "Ed25519")
      const mismatched = yield* failure({ JWT_ALGORITHM: "EdDSA", JWT_PRIVATE_KEY: ec })
      assert.strictEqual(mismatched.key, "JWT_PRIVATE_KEY")
      assert.notInclude(mismatched.message, "PRIVATE KEY-----")
      assert.strictEqual((yield* failure({ JWT_ALGORITHM: "ES256", JWT_PRIVATE_KEY: "not a pem" })).key, "JWT_PRIVATE_KEY")
      const settings = yield* load({
        JWT_ALGORITHM: "ES256",
        JWT_PRIVATE_KEY: ec.replaceAll("\n", "\\n"),
        ENVIRONMENT: "production",
        MEDIASOUP_ANNOUNCED_IP: "192.0.2.10"
      })
      assert.strictEqual(settings.auth.algorithm, "ES256")
      assert.isTrue(Option.isSome(settings.auth.privateKey))
      assert.strictEqual((yield* load({ JWT_ALGORITHM: "EdDSA", JWT_PRIVATE_KEY: ed })).auth.algorithm, "EdDSA")
    }))

  it.effect("requires JWT_SECRET in production", () =>
    Effect.gen(function*() {
      const error = yield* failure({ ENVIRONMENT: "production" })
      assert.strictEqual(error.key, "JWT_SECRET")
      assert.include(error.message, "JWT_SECRET=(unset)")
    }))

  it.effect("ENVIRONMENT accepts only development, staging and production; a typo stops start-up", () =>
    Effect.gen(function*() {
      for (const typo of ["Production", "prod", "PRODUCTION", "dev", "test", " production"]) {
        const error = yield* failure({ ENVIRONMENT: typo, JWT_SECRET: STRONG_SECRET })
        assert.strictEqual(error.key, "ENVIRONMENT", typo)
        assert.include(error.message, `ENVIRONMENT=${JSON.stringify(typo)}: expected one of development, staging, production`)
        assert.notInclude(error.message, "\n")
      }
      for (const name of ["development", "staging"] as const) assert.strictEqual((yield* load({ ENVIRONMENT: name })).service.environment, name)
      assert.strictEqual((yield* load(PRODUCTION)).service.environment, "production")
    }))

  it.effect("production refuses a low-entropy JWT_SECRET and a short provisioning key, naming the key and never the value", () =>
    Effect.gen(function*() {
      const weak = ["a".repeat(48), "ab".repeat(24), "passwordpasswordpasswordpassword", "changeme-changeme-changeme-changeme"]
      for (const secret of weak) {
        const error = yield* failure({ ...PRODUCTION, JWT_SECRET: secret })
        assert.strictEqual(error.key, "JWT_SECRET", secret)
        assert.include(error.message, "JWT_SECRET=<redacted>: expected a random secret")
        assert.notInclude(error.message, secret)
        // Outside production the same secret is accepted (only length is checked there).
        assert.strictEqual((yield* load({ JWT_SECRET: secret })).service.environment, "development")
      }
      // Random secrets as the README makes them pass: base64 and hex.
      for (const secret of [STRONG_SECRET, "0f3a9c1b7e2d4a6f8b0c1d2e3f4a5b6c", randomBytes(32).toString("hex")]) {
        assert.isFalse(isLowEntropy(secret), secret)
        yield* load({ ...PRODUCTION, JWT_SECRET: secret })
      }
      const shortKey = yield* failure({ ...PRODUCTION, AUTH_PROVISIONING_KEY: "op-key-hunter2" })
      assert.strictEqual(shortKey.key, "AUTH_PROVISIONING_KEY")
      assert.include(shortKey.message, "AUTH_PROVISIONING_KEY=<redacted>: expected at least 32 characters")
      assert.notInclude(shortKey.message, "hunter2")
      const key = "k".repeat(8) + randomBytes(18).toString("base64url")
      const settings = yield* load({ ...PRODUCTION, AUTH_PROVISIONING_KEY: key })
      assert.strictEqual(Option.map(settings.auth.provisioningKey, Redacted.value).pipe(Option.getOrUndefined), key)
      assert.isFalse(settings.auth.provisioningKeyGenerated)
    }))

  it.effect("development with no provisioning key makes one for the process; staging and production never do", () =>
    Effect.gen(function*() {
      const dev = yield* load({})
      assert.isTrue(dev.auth.provisioningKeyGenerated)
      const key = Option.map(dev.auth.provisioningKey, Redacted.value).pipe(Option.getOrElse(() => ""))
      assert.isAtLeast(key.length, 32)
      assert.notStrictEqual(Option.map((yield* load({})).auth.provisioningKey, Redacted.value).pipe(Option.getOrUndefined), key, "one per process")
      const given = yield* load({ AUTH_PROVISIONING_KEY: "op-key" })
      assert.isFalse(given.auth.provisioningKeyGenerated)
      for (const env of [{ ENVIRONMENT: "staging" }, PRODUCTION]) {
        const settings = yield* load(env)
        assert.isTrue(Option.isNone(settings.auth.provisioningKey), env.ENVIRONMENT)
        assert.isFalse(settings.auth.provisioningKeyGenerated)
      }
    }))

  it.effect("media: development announces 127.0.0.1 when listening on every interface; production requires MEDIASOUP_ANNOUNCED_IP", () =>
    Effect.gen(function*() {
      const dev = yield* load({})
      assert.strictEqual(dev.media.listenIp, "0.0.0.0")
      assert.deepStrictEqual(dev.media.announcedIp, Option.some("127.0.0.1"))
      assert.isTrue(dev.media.announcedIpDefaulted)
      const ipv6 = yield* load({ MEDIASOUP_LISTEN_IP: "::" })
      assert.deepStrictEqual(ipv6.media.announcedIp, Option.some("127.0.0.1"))
      // Given explicitly, or listening on one address: nothing is made up.
      const announced = yield* load({ MEDIASOUP_ANNOUNCED_IP: "192.0.2.10" })
      assert.deepStrictEqual([announced.media.announcedIp, announced.media.announcedIpDefaulted], [Option.some("192.0.2.10"), false])
      const loopback = yield* load({ MEDIASOUP_LISTEN_IP: "127.0.0.1" })
      assert.deepStrictEqual([loopback.media.announcedIp, loopback.media.announcedIpDefaulted], [Option.none(), false])

      const { MEDIASOUP_ANNOUNCED_IP: _, ...unannounced } = PRODUCTION
      for (const listen of ["0.0.0.0", "::"]) {
        const error = yield* failure({ ...unannounced, MEDIASOUP_LISTEN_IP: listen })
        assert.strictEqual(error.key, "MEDIASOUP_ANNOUNCED_IP")
        assert.include(error.message, "MEDIASOUP_ANNOUNCED_IP=(unset): expected the IP or host name clients send media to")
      }
      assert.deepStrictEqual((yield* load({ ...unannounced, MEDIASOUP_LISTEN_IP: "10.0.0.5" })).media.announcedIp, Option.none())
      assert.deepStrictEqual((yield* load(PRODUCTION)).media.announcedIp, Option.some("192.0.2.10"))
      // Staging keeps what it is given (a warning is logged at start).
      assert.deepStrictEqual((yield* load({ ENVIRONMENT: "staging" })).media.announcedIp, Option.none())
    }))

  it.effect("reports an unreadable or malformed HOCON file as AURALINK_CONFIG", () =>
    Effect.gen(function*() {
      const missing = yield* failure({ AURALINK_CONFIG: "/nonexistent/auralink.conf" })
      assert.strictEqual(missing.key, "AURALINK_CONFIG")
      const malformed = yield* failure({ AURALINK_CONFIG: hoconFile("auralink { service { name = ") })
      assert.strictEqual(malformed.key, "AURALINK_CONFIG")
      assert.notInclude(malformed.message, "\n")
    }))
  it.effect("cluster: defaults, the file's auralink.cluster keys, and a drain that would not fit in SHUTDOWN_TIMEOUT_MS names its key", () =>
    Effect.gen(function*() {
      const { cluster } = yield* load({})
      assert.deepStrictEqual(cluster, { instanceTtlMs: 15_000, capacity: 0, sessionsPerCore: 50, drainTimeoutMs: 20_000 })
      // The default drain leaves a third of a shorter shutdown for ending sessions and closing.
      assert.strictEqual((yield* load({ SHUTDOWN_TIMEOUT_MS: "9000" })).cluster.drainTimeoutMs, 6000)
      const fromFile = yield* load({
        AURALINK_CONFIG: hoconFile("auralink.cluster { instance_ttl_ms = 5000, capacity = 12, drain_timeout_ms = 1000 }")
      })
      assert.deepStrictEqual([fromFile.cluster.instanceTtlMs, fromFile.cluster.capacity, fromFile.cluster.drainTimeoutMs], [5000, 12, 1000])
      const drain = yield* failure({ SHUTDOWN_TIMEOUT_MS: "10000", DRAIN_TIMEOUT_MS: "10000" })
      assert.strictEqual(drain.key, "DRAIN_TIMEOUT_MS")
      assert.include(drain.message, "below SHUTDOWN_TIMEOUT_MS")
      for (const [key, bad] of [["INSTANCE_TTL_MS", "500"], ["INSTANCE_CAPACITY", "-1"], ["SESSIONS_PER_CORE", "0"], ["DRAIN_TIMEOUT_MS", "soon"]] as const) {
        assert.strictEqual((yield* failure({ [key]: bad })).key, key)
      }
    }))

  it.effect("AUDIO_JITTER_BUFFER_MS: 60 ms by default, 0 to 1000, also as auralink.audio.jitter_buffer_ms", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* load({})).audio.jitterBufferMs, 60)
      assert.strictEqual((yield* load({ AUDIO_JITTER_BUFFER_MS: "0" })).audio.jitterBufferMs, 0)
      assert.strictEqual((yield* load({ AURALINK_CONFIG: hoconFile("auralink.audio.jitter_buffer_ms = 40") })).audio.jitterBufferMs, 40)
      for (const bad of ["-1", "1001", "fast"]) {
        const error = yield* failure({ AUDIO_JITTER_BUFFER_MS: bad })
        assert.strictEqual(error.key, "AUDIO_JITTER_BUFFER_MS")
        assert.include(error.message, `AUDIO_JITTER_BUFFER_MS="${bad}": expected milliseconds 0-1000`)
      }
    }))

  it.effect("loads the seed's auralink.conf verbatim: credentials into the JDBC URL, compression read, unset substitutions optional", () =>
    Effect.gen(function*() {
      // The seed's environment section, less BRIDGE_ID (so `bridge_id = ${BRIDGE_ID}` is an unset substitution), plus what production requires.
      const env = {
        AURALINK_CONFIG: SEED_CONF,
        DB_PASSWORD: "your-db-password",
        DASHBOARD_API_KEY: "your-dashboard-key",
        WEBRTC_API_KEY: "your-webrtc-key",
        JWT_SECRET: STRONG_SECRET,
        MEDIASOUP_ANNOUNCED_IP: "192.0.2.10"
      }
      const settings = yield* load(env)
      assert.strictEqual(Redacted.value(Option.getOrThrow(settings.database.url)), "postgresql://auralink:your-db-password@postgres:5432/auralink")
      assert.deepStrictEqual(
        [settings.aiCore.enableCompression, settings.aiCore.targetSavings, settings.aiCore.qualityLevel],
        [true, Option.some(0.4), Option.some(7)]
      )
      assert.deepStrictEqual(settings.aiCore.grpcUrl, Option.some("auralink-ai-core:50051"))
      assert.deepStrictEqual([settings.service.environment, settings.service.region, settings.service.bridgeId], ["production", "us-west-2", "bridge-local-01"])
      assert.strictEqual(Redacted.value(Option.getOrThrow(settings.dashboard.apiKey)), "your-dashboard-key")
      assert.strictEqual(Redacted.value(Option.getOrThrow(settings.webrtcServer.apiKey)), "your-webrtc-key")
      assert.strictEqual(Redacted.value(Option.getOrThrow(settings.redis.url)), "redis://redis:6379")
      assert.deepStrictEqual(settings.features, { aic: true, sip: false, rtmp: false })
      // The one warning: BRIDGE_ID unset; every key of the file is one a setting reads.
      assert.deepStrictEqual(settings.warnings.map((w) => w.key), ["BRIDGE_ID"])
      assert.include(settings.warnings[0]?.message, "line 6: ${BRIDGE_ID} is unset; read as ${?BRIDGE_ID}")
      // With the seed's full environment, nothing to warn about and the bridge id from it.
      const full = yield* load({ ...env, BRIDGE_ID: "bridge-us-west-2-01" })
      assert.deepStrictEqual([full.service.bridgeId, full.warnings], ["bridge-us-west-2-01", []])
      // With none of its variables: each substitution is left out (one warning each), the user still joins the URL.
      const bare = yield* load({ AURALINK_CONFIG: SEED_CONF, JWT_SECRET: STRONG_SECRET, MEDIASOUP_ANNOUNCED_IP: "192.0.2.10" })
      assert.deepStrictEqual(bare.warnings.map((w) => w.key).sort(), ["BRIDGE_ID", "DASHBOARD_API_KEY", "DB_PASSWORD", "WEBRTC_API_KEY"])
      assert.strictEqual(Redacted.value(Option.getOrThrow(bare.database.url)), "postgresql://auralink@postgres:5432/auralink")
      assert.isTrue(Option.isNone(bare.dashboard.apiKey))
    }))

  it.effect("database credentials join a URL that names none; a URL's own credentials win", () =>
    Effect.gen(function*() {
      const url = (env: Record<string, string>) => Effect.map(load(env), (s) => Option.map(s.database.url, Redacted.value).pipe(Option.getOrNull))
      assert.strictEqual(yield* url({ DATABASE_URL: "postgres://db:5432/x", DB_USER: "svc", DB_PASSWORD: "p@ss" }), "postgres://svc:p%40ss@db:5432/x")
      assert.strictEqual(yield* url({ DATABASE_URL: "postgres://u:pw@db:5432/x", DB_USER: "svc", DB_PASSWORD: "other" }), "postgres://u:pw@db:5432/x")
      assert.strictEqual(yield* url({ DATABASE_URL: "postgresql://db/x?user=u&password=pw", DB_PASSWORD: "other" }), "postgresql://db/x?user=u&password=pw")
      assert.strictEqual(
        yield* url({ AURALINK_CONFIG: hoconFile(`auralink.database { url = "jdbc:postgresql://db/x", username = "file-user", password = "file-pw" }`) }),
        "postgresql://file-user:file-pw@db/x"
      )
      // DB_HOST beside a URL is a known key (not warned about as unknown), and the URL is used.
      const both = yield* load({ AURALINK_CONFIG: hoconFile(`auralink.database { url = "postgres://db/x", host = "ignored", port = 1 }`) })
      assert.deepStrictEqual(both.warnings, [])
    }))

  it.effect("AI Core compression: AI_CORE_ENABLE_COMPRESSION, AI_CORE_TARGET_SAVINGS 0-1, AI_CORE_QUALITY_LEVEL 1-10", () =>
    Effect.gen(function*() {
      const defaults = (yield* load({})).aiCore
      assert.deepStrictEqual([defaults.enableCompression, defaults.targetSavings, defaults.qualityLevel], [true, Option.none(), Option.none()])
      const set = (yield* load({ AI_CORE_ENABLE_COMPRESSION: "false", AI_CORE_TARGET_SAVINGS: "0.25", AI_CORE_QUALITY_LEVEL: "3" })).aiCore
      assert.deepStrictEqual([set.enableCompression, set.targetSavings, set.qualityLevel], [false, Option.some(0.25), Option.some(3)])
      for (
        const [env, key] of [
          [{ AI_CORE_TARGET_SAVINGS: "1.5" }, "AI_CORE_TARGET_SAVINGS"],
          [{ AI_CORE_TARGET_SAVINGS: "much" }, "AI_CORE_TARGET_SAVINGS"],
          [{ AI_CORE_QUALITY_LEVEL: "0" }, "AI_CORE_QUALITY_LEVEL"],
          [{ AI_CORE_QUALITY_LEVEL: "7.5" }, "AI_CORE_QUALITY_LEVEL"],
          [{ AI_CORE_ENABLE_COMPRESSION: "sometimes" }, "AI_CORE_ENABLE_COMPRESSION"]
        ] as const
      ) {
        assert.strictEqual((yield* failure(env)).key, key)
      }
      const fromFile = yield* failure({ AURALINK_CONFIG: hoconFile("auralink.ai_core.compression.quality_level = 11") })
      assert.include(fromFile.message, `AI_CORE_QUALITY_LEVEL="11" (auralink.ai_core.compression.quality_level in the file): expected a whole number 1-10`)
    }))

  it.effect("warns once per key of the file no setting reads, naming it, and starts", () =>
    Effect.gen(function*() {
      const settings = yield* load({
        AURALINK_CONFIG: hoconFile(`auralink { http { port = 8181, prot = 1 }, ai_core { compression { level = 3 } }, made_up { a = [1, 2] } }`)
      })
      assert.strictEqual(settings.http.port, 8181)
      assert.deepStrictEqual(settings.warnings.map((w) => w.key), ["auralink.ai_core.compression.level", "auralink.http.prot", "auralink.made_up.a"])
      assert.strictEqual(settings.warnings[1]?.message, "configuration file: unknown key auralink.http.prot (no setting reads it); ignored")
      // A variable of the environment is not a key of the file: nothing to warn about.
      assert.deepStrictEqual((yield* load({ AURALINK_CONFIG: hoconFile("auralink {}"), NOT_A_SETTING: "x" })).warnings, [])
    }))

  it.effect("ENABLE_SIP / ENABLE_RTMP true stop start-up with one line naming the key (they are not built yet)", () =>
    Effect.gen(function*() {
      const sip = yield* failure({ ENABLE_SIP: "true" })
      assert.strictEqual(sip.key, "ENABLE_SIP")
      assert.strictEqual(
        sip.message,
        `invalid configuration: ENABLE_SIP="true": expected false: SIP ingress is not built yet (remove the key or set it to false)`
      )
      const rtmp = yield* failure({ AURALINK_CONFIG: hoconFile("auralink.features.enable_rtmp = true") })
      assert.strictEqual(rtmp.key, "ENABLE_RTMP")
      assert.include(rtmp.message, `ENABLE_RTMP="true" (auralink.features.enable_rtmp in the file): expected false: RTMP ingress`)
      assert.notInclude(rtmp.message, "\n")
    }))

  it.effect("an unset variable in the file is optional: the key falls back to its default, with a warning", () =>
    Effect.gen(function*() {
      const settings = yield* load({
        AURALINK_CONFIG: hoconFile("auralink { service { bridge_id = ${NO_SUCH_VARIABLE_X}, region = ${REGION_X} } }"),
        REGION_X: "eu-1"
      })
      assert.deepStrictEqual([settings.service.bridgeId, settings.service.region], ["bridge-local-01", "eu-1"])
      assert.deepStrictEqual(settings.warnings.map((w) => w.key), ["NO_SUCH_VARIABLE_X"])
    }))
})
