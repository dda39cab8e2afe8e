import { assert, layer } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup } from "effect/http-api"
import { SqlClient } from "effect/sql/SqlClient"
import { SignJWT } from "jose"
import { Health } from "../../src/layers/Health.ts"
import { AuthenticationLive } from "../../src/adapters/http/authentication.ts"
import { ApiRoutes } from "../../src/adapters/http/routes.ts"
import { serveHttp } from "../../src/layers/HttpServer.ts"
import { Authentication, CurrentPrincipal } from "../../src/schemas/auth.ts"
import { bearer, JWT_SECRET, login, PROVISIONING_KEY, record, registerDevice, request, str } from "../support/auth.ts"
import { onFreshDatabase } from "../support/server.ts"
import { capturedLogs } from "../support/http.ts"
import { Redis as IORedis } from "ioredis"
import { REDIS_URL } from "../support/redis.ts"

const ISSUER = "auralink-ingress-egress"
const AUDIENCE = "auralink"

// A protected probe endpoint served beside the real API, to exercise the Authentication middleware.
class ProbeGroup extends HttpApiGroup.make("probe")
  .add(HttpApiEndpoint.get("whoami", "/probe/whoami", {
    success: Schema.Struct({ userId: Schema.String, deviceId: Schema.String, scope: Schema.String })
  }))
  .middleware(Authentication)
{}
class ProbeApi extends HttpApi.make("probe").add(ProbeGroup) {}
const ProbeRoutes = HttpApiBuilder.layer(ProbeApi).pipe(
  Layer.provide(HttpApiBuilder.group(ProbeApi, "probe", (handlers) =>
    Effect.succeed(handlers.handle("whoami", () =>
      Effect.gen(function*() {
        const { deviceId, scope, userId } = yield* CurrentPrincipal
        return { userId, deviceId, scope }
      }))))),
  Layer.provideMerge(AuthenticationLive)
)

const logs = capturedLogs()
const stack = (env: Record<string, string>) =>
  onFreshDatabase(serveHttp(Layer.mergeAll(ApiRoutes, ProbeRoutes), 0, "127.0.0.1"), {
    REDIS_URL,
    JWT_SECRET,
    // The shared Redis keeps the per-IP auth budget across test files and runs: not under test here.
    RATE_LIMIT_AUTH_PER_MINUTE: "100000",
    ...env
  }).pipe(Layer.provide(logs.layer))
const Server = stack({ AUTH_PROVISIONING_KEY: PROVISIONING_KEY })
// Development makes a key for the process when none is given; staging and production never do.
const ServerWithoutKey = stack({ ENVIRONMENT: "production" })

// ---- helpers ----

const register = registerDevice
const whoami = (token: string) => request("GET", "/probe/whoami", undefined, bearer(token))
const count = (table: "devices" | "refresh_tokens") =>
  Effect.gen(function*() {
    const sql = yield* SqlClient
    const rows = yield* sql<{ n: string }>`SELECT count(*)::text AS n FROM ${sql(table)}`
    return Number(rows[0]?.n)
  }).pipe(Effect.orDie)

const assertRefused = (res: { status: number; headers: Headers; json: Record<string, unknown> }, error: string, label = "") => {
  assert.strictEqual(res.status, 401, label)
  assert.strictEqual(res.headers.get("www-authenticate"), `Bearer error="${error}"`, label)
  assert.strictEqual(res.headers.get("content-type"), "application/problem+json", label)
  assert.strictEqual(res.json["status"], 401, label)
  assert.strictEqual(res.json["title"], "Unauthorized", label)
}

/** Seconds a key of the real Redis has left. */
const redisTtl = async (name: string) => {
  const client = new IORedis(REDIS_URL)
  try {
    return await client.ttl(`auralink:${name}`)
  } finally {
    client.disconnect()
  }
}

const key = (secret: string) => new TextEncoder().encode(secret)
const now = () => Math.floor(Date.now() / 1000)
/** An HS256 token with the given claims (defaults: a valid token for `subject`). */
const forge = (subject: { userId: string; deviceId: string }, options: {
  claims?: Record<string, unknown>
  secret?: string
  issuer?: string
  audience?: string
  exp?: number
  iat?: number
  alg?: string
} = {}) =>
  Effect.promise(() => {
    const jwt = new SignJWT({ device_id: subject.deviceId, scope: "session", ...options.claims })
      .setProtectedHeader({ alg: options.alg ?? "HS256" })
      .setSubject(subject.userId)
      .setJti(crypto.randomUUID())
      .setIssuedAt(options.iat ?? now())
      .setIssuer(options.issuer ?? ISSUER)
      .setAudience(options.audience ?? AUDIENCE)
      .setExpirationTime(options.exp ?? now() + 600)
    return jwt.sign(key(options.secret ?? JWT_SECRET))
  })
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")

layer(Server, { timeout: 60_000 })("device-token authentication", (it) => {
  it.effect("full lifecycle: register, token, protected call, refresh twice, revoke", () =>
    Effect.gen(function*() {
      const device = yield* register("user-lifecycle")
      assert.lengthOf(Buffer.from(device.deviceSecret, "base64url"), 32)
      const first = yield* login(device)
      assert.strictEqual(first.body["tokenType"], "Bearer")
      assert.strictEqual(first.body["expiresIn"], 900)

      const me = yield* whoami(first.accessToken)
      assert.strictEqual(me.status, 200, me.text)
      assert.deepStrictEqual(me.json, { userId: "user-lifecycle", deviceId: device.deviceId, scope: "session" })

      const second = yield* request("POST", "/api/auth/refresh", { refreshToken: first.refreshToken })
      assert.strictEqual(second.status, 200, second.text)
      const third = yield* request("POST", "/api/auth/refresh", { refreshToken: str(second.json["refreshToken"]) })
      assert.strictEqual(third.status, 200, third.text)
      const access = str(third.json["accessToken"])
      const refresh = str(third.json["refreshToken"])
      assert.notStrictEqual(refresh, first.refreshToken)
      assert.strictEqual((yield* whoami(access)).status, 200)

      const revoked = yield* request("POST", "/api/auth/revoke", { refreshToken: refresh }, bearer(access))
      assert.strictEqual(revoked.status, 204, revoked.text)
      assertRefused(yield* whoami(access), "invalid_token", "revoked access token")
      assertRefused(yield* request("POST", "/api/auth/refresh", { refreshToken: refresh }), "invalid_grant", "revoked refresh token")
      // Revoke itself needs a valid access token.
      assertRefused(yield* request("POST", "/api/auth/revoke", {}, bearer(access)), "invalid_token", "revoke with revoked token")

      // The secret is stored as a salted scrypt hash, the refresh tokens as SHA-256 only.
      const sql = yield* SqlClient
      const rows = yield* sql<{ secret_hash: string }>`SELECT secret_hash FROM devices WHERE id = ${device.deviceId}`
      assert.match(rows[0]?.secret_hash ?? "", /^scrypt\$16384\$8\$1\$/)
      assert.notInclude(rows[0]?.secret_hash ?? "", device.deviceSecret)
      const tokens = yield* sql<{ token_hash: string; used: boolean; revoked: boolean }>`
        SELECT token_hash, used_at IS NOT NULL AS used, revoked_at IS NOT NULL AS revoked
        FROM refresh_tokens WHERE device_id = ${device.deviceId} ORDER BY created_at`
      assert.lengthOf(tokens, 3)
      assert.deepStrictEqual(tokens.map((t) => [t.used, t.revoked]), [[true, true], [true, true], [false, true]])
      assert.isFalse(tokens.some((t) => t.token_hash === first.refreshToken))
    }))

  it.effect("reusing a used refresh token revokes the whole family and logs a security event", () =>
    Effect.gen(function*() {
      const device = yield* register("user-reuse")
      const first = yield* login(device)
      const rotated = yield* request("POST", "/api/auth/refresh", { refreshToken: first.refreshToken })
      assert.strictEqual(rotated.status, 200)
      const newer = str(rotated.json["refreshToken"])

      assertRefused(yield* request("POST", "/api/auth/refresh", { refreshToken: first.refreshToken }), "invalid_grant", "reuse")
      assertRefused(yield* request("POST", "/api/auth/refresh", { refreshToken: newer }), "invalid_grant", "newer token of the family")
      const event = logs.lines.find((l) => l["event"] === "refresh_token_reuse" && l["deviceId"] === device.deviceId)
      assert.isDefined(event)
      assert.strictEqual(event?.["level"], "warn")
      assert.isString(event?.["familyId"])
      // Another session of the same device (another family) is unaffected.
      const other = yield* login(device)
      assert.strictEqual((yield* request("POST", "/api/auth/refresh", { refreshToken: other.refreshToken })).status, 200)
    }))

  it.effect("reusing a refresh token also denies the family's live access tokens at once; other families keep working", () =>
    Effect.gen(function*() {
      const device = yield* register("user-reuse-access")
      const first = yield* login(device)
      const rotated = yield* request("POST", "/api/auth/refresh", { refreshToken: first.refreshToken })
      assert.strictEqual(rotated.status, 200, rotated.text)
      const second = str(rotated.json["accessToken"])
      const other = yield* login(device)
      for (const token of [first.accessToken, second, other.accessToken]) assert.strictEqual((yield* whoami(token)).status, 200)
      // Access tokens carry their family (the same one after a rotation).
      const fid = (token: string) => record(JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")))["fid"]
      assert.isString(fid(first.accessToken))
      assert.strictEqual(fid(second), fid(first.accessToken))
      assert.notStrictEqual(fid(other.accessToken), fid(first.accessToken))

      assertRefused(yield* request("POST", "/api/auth/refresh", { refreshToken: first.refreshToken }), "invalid_grant", "reuse")
      assertRefused(yield* whoami(first.accessToken), "invalid_token", "the family's first access token")
      assertRefused(yield* whoami(second), "invalid_token", "the family's newest access token")
      assert.isTrue(logs.lines.some((l) => l["event"] === "access_token_rejected" && l["reason"] === "revoked_family"))
      assert.strictEqual((yield* whoami(other.accessToken)).status, 200, "another family of the same device")
      // The deny lives in the state store for the access token's lifetime plus the iat skew.
      const ttl = yield* Effect.promise(() => redisTtl(`auth:deny:family:${String(fid(second))}`))
      assert.isAbove(ttl, 900)
      assert.isAtMost(ttl, 960)
    }))

  it.effect("refuses an access token issued in the future beyond 60 s of skew", () =>
    Effect.gen(function*() {
      const device = yield* register("user-future-iat")
      const subject = { userId: "user-future-iat", deviceId: device.deviceId }
      assertRefused(yield* whoami(yield* forge(subject, { iat: now() + 600 })), "invalid_token", "iat 10 min ahead")
      assertRefused(yield* whoami(yield* forge(subject, { iat: now() + 90 })), "invalid_token", "iat 90 s ahead")
      assert.isTrue(logs.lines.some((l) => l["event"] === "access_token_rejected" && l["reason"] === "iat_in_future"))
      assert.strictEqual((yield* whoami(yield* forge(subject, { iat: now() + 30 }))).status, 200, "within the skew")
    }))

  it.effect("two concurrent refreshes of one token: one rotates, the other is a reuse that revokes the family", () =>
    Effect.gen(function*() {
      const device = yield* register("user-race")
      const first = yield* login(device)
      const results = yield* Effect.all(
        [0, 1].map(() => request("POST", "/api/auth/refresh", { refreshToken: first.refreshToken })),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(results.map((r) => r.status).sort(), [200, 401])
      const winner = results.find((r) => r.status === 200)
      assertRefused(yield* request("POST", "/api/auth/refresh", { refreshToken: str(winner?.json["refreshToken"]) }), "invalid_grant")
    }))

  it.effect("refuses forged, expired, revoked and malformed access tokens with 401 invalid_token", () =>
    Effect.gen(function*() {
      const device = yield* register("user-forgery")
      const subject = { userId: "user-forgery", deviceId: device.deviceId }
      const valid = yield* forge(subject)
      assert.strictEqual((yield* whoami(valid)).status, 200, "the forging helper makes valid tokens by default")

      const revokedJti = (yield* login(device)).accessToken
      assert.strictEqual((yield* request("POST", "/api/auth/revoke", {}, bearer(revokedJti))).status, 204)

      const [, payload] = valid.split(".")
      const doomed = yield* register("user-doomed")
      const doomedToken = (yield* login(doomed)).accessToken
      const gone = yield* request("DELETE", `/api/auth/devices/${doomed.deviceId}`, undefined, { "x-provisioning-key": PROVISIONING_KEY })
      assert.strictEqual(gone.status, 204, gone.text)

      const cases: Record<string, string> = {
        "alg none": `${b64({ alg: "none", typ: "JWT" })}.${payload}.`,
        "wrong key": yield* forge(subject, { secret: "another-secret-0123456789abcdef-0123456789" }),
        "wrong audience": yield* forge(subject, { audience: "someone-else" }),
        "wrong issuer": yield* forge(subject, { issuer: "evil-issuer" }),
        "expired": yield* forge(subject, { exp: now() - 120 }),
        "not yet valid": yield* forge(subject, { claims: { nbf: now() + 600 } }),
        "HS512 with the right key": yield* forge(subject, { alg: "HS512" }),
        "revoked jti": revokedJti,
        "garbage": "not-a-jwt",
        "missing claims": yield* Effect.promise(() =>
          new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setIssuer(ISSUER).setAudience(AUDIENCE).setExpirationTime(now() + 600).sign(key(JWT_SECRET))
        ),
        "device of another user": yield* forge({ userId: "someone-else", deviceId: device.deviceId }),
        "revoked device": doomedToken,
        "unknown device": yield* forge({ userId: "user-forgery", deviceId: crypto.randomUUID() })
      }
      for (const [label, token] of Object.entries(cases)) {
        const res = yield* whoami(token)
        assertRefused(res, "invalid_token", label)
        assert.strictEqual(res.json["detail"], "Invalid or expired access token", label)
      }
      assertRefused(yield* request("GET", "/probe/whoami"), "invalid_token", "no Authorization header")
      assertRefused(yield* request("GET", "/probe/whoami", undefined, { authorization: `Basic ${valid}` }), "invalid_token", "not Bearer")
    }))

  it.effect("registration needs the provisioning key and changes nothing without it", () =>
    Effect.gen(function*() {
      const before = yield* count("devices")
      const missing = yield* request("POST", "/api/auth/devices", { userId: "intruder" })
      assert.strictEqual(missing.status, 401)
      assert.strictEqual(missing.headers.get("www-authenticate"), "Bearer realm=\"provisioning\"")
      assert.strictEqual((yield* request("POST", "/api/auth/devices", { userId: "intruder" }, bearer("wrong-key"))).status, 401)
      assert.strictEqual((yield* request("POST", "/api/auth/devices", { userId: "intruder" }, { "x-provisioning-key": "wrong" })).status, 401)
      assert.strictEqual(yield* count("devices"), before)

      const viaBearer = yield* request("POST", "/api/auth/devices", { userId: "operator-made" }, bearer(PROVISIONING_KEY))
      assert.strictEqual(viaBearer.status, 201)
      const bad = yield* request("POST", "/api/auth/devices", { name: "no user" }, bearer(PROVISIONING_KEY))
      assert.strictEqual(bad.status, 400)
      assert.include(JSON.stringify(bad.json["errors"]), "userId")
      assert.strictEqual(yield* count("devices"), before + 1)
    }))

  it.effect("a device userId or name with NUL or an unpaired surrogate is 400 naming the field; token lookups too; nothing stored", () =>
    Effect.gen(function*() {
      const before = yield* count("devices")
      const cases: ReadonlyArray<readonly [Record<string, string>, string]> = [
        [{ userId: "nul\u0000user" }, "userId"],
        [{ userId: "lone\ud800" }, "userId"],
        [{ userId: "ok-user", name: "nul\u0000name" }, "name"],
        [{ userId: "ok-user", name: "\udc00lone" }, "name"]
      ]
      for (const [body, field] of cases) {
        const res = yield* request("POST", "/api/auth/devices", body, bearer(PROVISIONING_KEY))
        assert.strictEqual(res.status, 400, `${field}: ${res.text}`)
        assert.include(JSON.stringify(res.json["errors"]), field, field)
      }
      assert.strictEqual(yield* count("devices"), before)
      const lookup = yield* request("POST", "/api/auth/token", { deviceId: "dev\u0000ice", deviceSecret: "s" })
      assert.strictEqual(lookup.status, 400, lookup.text)
      assert.include(JSON.stringify(lookup.json["errors"]), "deviceId")
    }))

  it.effect("/status: a public summary; pids, session ids, paths and process details only for operators", () =>
    Effect.gen(function*() {
      const health = yield* Health
      yield* health.section(
        "probe",
        Effect.succeed({
          streams: 2,
          healthy: true,
          state: "ready",
          target: "asr-gateway.internal:50052",
          channel: { state: "READY", url: "redis://user:pw@cache:6379", sent: 7 },
          directory: "/secret/data/dir",
          workers: [{ pid: 4242 }, { pid: 4343 }],
          sessions: [{ id: "session-id-visible-to-operators" }]
        })
      )
      const status = (headers: Record<string, string> = {}) => request("GET", "/status", undefined, headers)
      const isSummary = (res: { status: number; json: Record<string, unknown>; text: string }, label: string) => {
        assert.strictEqual(res.status, 200, label)
        assert.strictEqual(res.json["view"], "summary", label)
        assert.notProperty(res.json, "process", label)
        assert.deepStrictEqual(res.json["probe"], {
          streams: 2,
          healthy: true,
          state: "ready",
          channel: { state: "READY", sent: 7 },
          workers: 2,
          sessions: 1
        }, label)
        for (const secret of ["/secret/data/dir", "asr-gateway.internal", "redis://", "4242", "session-id-visible-to-operators", String(process.pid)]) {
          assert.notInclude(res.text, secret, label)
        }
        assert.strictEqual(record(res.json["service"])["name"], "ingress-egress", label)
      }
      const isFull = (res: { status: number; json: Record<string, unknown>; text: string }, label: string) => {
        assert.strictEqual(res.status, 200, label)
        assert.strictEqual(res.json["view"], "full", label)
        assert.strictEqual(record(res.json["process"])["pid"], process.pid, label)
        assert.include(res.text, "/secret/data/dir", label)
        assert.include(res.text, "session-id-visible-to-operators", label)
      }
      isSummary(yield* status(), "no credential")
      isSummary(yield* status(bearer("not-a-token")), "a bad token")
      isSummary(yield* status({ "x-provisioning-key": "wrong" }), "a wrong key")
      const device = yield* register("status-user")
      const subject = { userId: "status-user", deviceId: device.deviceId }
      isSummary(yield* status(bearer(yield* forge(subject))), "a user's token")
      isFull(yield* status({ "x-provisioning-key": PROVISIONING_KEY }), "the provisioning key")
      isFull(yield* status(bearer(PROVISIONING_KEY)), "the provisioning key as a bearer")
      isFull(yield* status(bearer(yield* forge(subject, { claims: { scope: "session operator" } }))), "an operator token")
    }))

  it.effect("a wrong device secret or unknown device is 401 invalid_client and stores no token", () =>
    Effect.gen(function*() {
      const device = yield* register("user-wrong-secret")
      const before = yield* count("refresh_tokens")
      const wrongSecret = yield* request("POST", "/api/auth/token", { deviceId: device.deviceId, deviceSecret: "not-the-secret" })
      const unknown = yield* request("POST", "/api/auth/token", { deviceId: crypto.randomUUID(), deviceSecret: device.deviceSecret })
      const notUuid = yield* request("POST", "/api/auth/token", { deviceId: "abc", deviceSecret: device.deviceSecret })
      for (const res of [wrongSecret, unknown, notUuid]) assertRefused(res, "invalid_client")
      // The same body whichever part was wrong.
      assert.strictEqual(wrongSecret.text, unknown.text)
      assert.strictEqual(yield* count("refresh_tokens"), before)
    }))

  it.effect("a device is revoked by its user's token; another user's token cannot see it", () =>
    Effect.gen(function*() {
      const mine = yield* register("user-owner")
      const token = (yield* login(mine)).accessToken
      const stranger = yield* register("user-stranger")
      const strangerToken = (yield* login(stranger)).accessToken
      assert.strictEqual((yield* request("DELETE", `/api/auth/devices/${mine.deviceId}`, undefined, bearer(strangerToken))).status, 404)
      assert.strictEqual((yield* request("DELETE", `/api/auth/devices/${mine.deviceId}`, undefined, bearer("nonsense"))).status, 401)
      assert.strictEqual((yield* request("DELETE", `/api/auth/devices/${mine.deviceId}`)).status, 401)
      assert.strictEqual((yield* request("DELETE", `/api/auth/devices/${mine.deviceId}`, undefined, bearer(token))).status, 204)
      assertRefused(yield* whoami(token), "invalid_token")
      assertRefused(yield* request("POST", "/api/auth/token", mine), "invalid_client")
    }))

  it.effect("counts issued, refreshed, revoked and rejected tokens on /metrics", () =>
    Effect.gen(function*() {
      const text = (yield* request("GET", "/metrics")).text
      for (const name of ["auralink_auth_tokens_issued_total", "auralink_auth_tokens_refreshed_total", "auralink_auth_tokens_revoked_total"]) {
        assert.match(text, new RegExp(`^${name} [1-9]`, "m"), name)
      }
      assert.match(text, /^auralink_auth_tokens_rejected_total\{reason="invalid_token"\} [1-9]/m)
      assert.match(text, /^auralink_auth_tokens_rejected_total\{reason="refresh_reuse"\} [1-9]/m)
    }))
})

layer(ServerWithoutKey, { timeout: 60_000 })("device registration without a provisioning key configured", (it) => {
  it.effect("is refused with 403 and creates no device", () =>
    Effect.gen(function*() {
      for (const headers of [{}, bearer("anything"), { "x-provisioning-key": "anything" }]) {
        const res = yield* request("POST", "/api/auth/devices", { userId: "u" }, headers)
        assert.strictEqual(res.status, 403)
        assert.strictEqual(res.json["status"], 403)
      }
      assert.strictEqual(yield* count("devices"), 0)
    }))
})
