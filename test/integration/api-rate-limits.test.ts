import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { ApiRoutes } from "../../src/adapters/http/routes.ts"
import { serveHttp } from "../../src/layers/HttpServer.ts"
import { baseUrl } from "../support/http.ts"
import { onFreshDatabase } from "../support/server.ts"

const PROVISIONING_KEY = "prov-key-for-rate-limit-tests-0123"

// Limits as configured; without REDIS_URL the store is in memory and new per server, so budgets start empty.
const server = (limits: Record<string, string>) => onFreshDatabase(serveHttp(ApiRoutes, 0, "127.0.0.1"), { AUTH_PROVISIONING_KEY: PROVISIONING_KEY, ...limits })

const call = (method: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const url = yield* baseUrl
    const response = yield* Effect.promise(() =>
      fetch(`${url}${path}`, {
        method,
        headers: { "content-type": "application/json", ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) })
      })
    )
    const text = yield* Effect.promise(() => response.text())
    return { status: response.status, headers: response.headers, body: text.length > 0 ? JSON.parse(text) : undefined }
  })

/** Runs `attempt` inside one epoch-aligned minute window: near a boundary it first waits for the next one. */
const withinOneWindow = <A, E, R>(attempt: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const left = 60_000 - (Date.now() % 60_000)
    return left < 5_000 ? Effect.andThen(Effect.sleep(left + 10), attempt) : attempt
  })

layer(server({ RATE_LIMIT_AUTH_PER_MINUTE: "6" }), { timeout: 60_000, excludeTestServices: true })("rate limits on the real API", (it) => {
  it.effect("auth endpoints: per client IP, 429 with Retry-After and RateLimit-* headers past the limit", () =>
    withinOneWindow(Effect.gen(function*() {
      const statuses: Array<number> = []
      let last = yield* call("POST", "/api/auth/token", { deviceId: "x", deviceSecret: "y" })
      statuses.push(last.status)
      for (let i = 0; i < 6; i++) {
        last = yield* call("POST", "/api/auth/token", { deviceId: "x", deviceSecret: "y" })
        statuses.push(last.status)
      }
      return { statuses, last }
    })).pipe(Effect.map(({ last, statuses }) => {
      assert.deepStrictEqual(statuses.slice(0, 6), [401, 401, 401, 401, 401, 401])
      assert.strictEqual(statuses[6], 429)
      assert.strictEqual(last.headers.get("content-type"), "application/problem+json")
      assert.strictEqual(last.headers.get("ratelimit-limit"), "6")
      assert.strictEqual(last.headers.get("ratelimit-remaining"), "0")
      assert.isAtLeast(Number(last.headers.get("retry-after")), 1)
      assert.strictEqual(last.body.status, 429)
    })))
})

layer(server({ RATE_LIMIT_AUTH_PER_MINUTE: "20" }), { timeout: 60_000, excludeTestServices: true })("rate limit under concurrency", (it) => {
  it.effect("of 50 concurrent requests with a limit of 20, exactly 20 get through", () =>
    Effect.gen(function*() {
      const statuses = yield* withinOneWindow(Effect.forEach(
        Array.from({ length: 50 }, () => call("POST", "/api/auth/token", { deviceId: "x", deviceSecret: "y" })),
        (request) => Effect.map(request, (r) => r.status),
        { concurrency: "unbounded" }
      ))
      assert.strictEqual(statuses.filter((s) => s === 401).length, 20)
      assert.strictEqual(statuses.filter((s) => s === 429).length, 30)
    }))
})

layer(server({ RATE_LIMIT_DEFAULT_PER_MINUTE: "2" }), { timeout: 60_000, excludeTestServices: true })("per-user limits behind authentication", (it) => {
  it.effect("an authenticated endpoint counts per user; another user keeps a full budget", () =>
    Effect.gen(function*() {
      const tokenFor = (userId: string) =>
        Effect.gen(function*() {
          const device = yield* call("POST", "/api/auth/devices", { userId }, { "x-provisioning-key": PROVISIONING_KEY })
          const tokens = yield* call("POST", "/api/auth/token", { deviceId: device.body.deviceId, deviceSecret: device.body.deviceSecret })
          return String(tokens.body.accessToken)
        })
      // Revoke denies the presented token, so each call signs out a token of its own.
      const tokens = [yield* tokenFor("u-a"), yield* tokenFor("u-a"), yield* tokenFor("u-a"), yield* tokenFor("u-b")]
      const revoke = (token: string) => call("POST", "/api/auth/revoke", {}, { authorization: `Bearer ${token}` })
      const [first, second, third, other] = yield* withinOneWindow(Effect.forEach(tokens, revoke))
      assert.strictEqual(first?.status, 204)
      assert.strictEqual(first?.headers.get("ratelimit-limit"), "2")
      assert.strictEqual(second?.status, 204)
      assert.strictEqual(third?.status, 429)
      assert.strictEqual(other?.status, 204)
      const unauthenticated = yield* revoke("not-a-token")
      assert.strictEqual(unauthenticated.status, 401, "authentication runs before the per-user limit")
    }))
})

layer(server({ RATE_LIMIT_AUTH_PER_MINUTE: "5", RATE_LIMIT_DEFAULT_PER_MINUTE: "3" }), { timeout: 60_000, excludeTestServices: true })(
  "bad tokens and event streams count",
  (it) => {
    it.effect("requests with forged tokens count per client IP (REST and SSE): 401 until the auth budget is spent, then 429 with Retry-After", () =>
      withinOneWindow(Effect.gen(function*() {
        const forged = { authorization: "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged" }
        const statuses: Array<number> = []
        for (let i = 0; i < 4; i++) statuses.push((yield* call("GET", "/api/sessions", undefined, forged)).status)
        const url = yield* baseUrl
        const sse = yield* Effect.promise(() => fetch(`${url}/api/webrtc/${crypto.randomUUID()}/events?access_token=forged`))
        statuses.push(sse.status)
        const refused = yield* call("GET", "/api/sessions", undefined, forged)
        const refusedSse = yield* Effect.promise(() => fetch(`${url}/api/webrtc/${crypto.randomUUID()}/events?access_token=forged`))
        return { statuses, refused, refusedSse: { status: refusedSse.status, retryAfter: refusedSse.headers.get("retry-after") } }
      })).pipe(Effect.map(({ refused, refusedSse, statuses }) => {
        assert.deepStrictEqual(statuses, [401, 401, 401, 401, 401])
        assert.strictEqual(refused.status, 429)
        assert.isAtLeast(Number(refused.headers.get("retry-after")), 1)
        assert.strictEqual(refused.body.status, 429)
        assert.strictEqual(refusedSse.status, 429)
        assert.isAtLeast(Number(refusedSse.retryAfter), 1)
      })))

    it.effect("SSE connects count against the user's budget (the default class, as the other /api/webrtc requests)", () =>
      Effect.gen(function*() {
        const device = yield* call("POST", "/api/auth/devices", { userId: "sse-user" }, { "x-provisioning-key": PROVISIONING_KEY })
        const tokens = yield* call("POST", "/api/auth/token", { deviceId: device.body.deviceId, deviceSecret: device.body.deviceSecret })
        const token = String(tokens.body.accessToken)
        const url = yield* baseUrl
        return yield* withinOneWindow(Effect.gen(function*() {
          const started = yield* call("POST", "/api/session", {}, { authorization: `Bearer ${token}` })
          const id = String(started.body.id)
          const statuses: Array<number> = [started.status]
          for (let i = 0; i < 4; i++) {
            const abort = new AbortController()
            const res = yield* Effect.promise(() => fetch(`${url}/api/webrtc/${id}/events?access_token=${token}`, { signal: abort.signal }))
            statuses.push(res.status)
            abort.abort()
          }
          return statuses
        }))
      }).pipe(Effect.map((statuses) => assert.deepStrictEqual(statuses, [201, 200, 200, 200, 429]))))
  }
)
