import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { AppConfig } from "../../src/layers/Config.ts"
import { Sessions } from "../../src/layers/SessionStore.ts"
import { defaultConfig } from "../../src/programs/sessions/start.ts"
import { AppServices } from "../../src/main.ts"
import { Redis as IORedis } from "ioredis"
import { ApiRoutes } from "../../src/adapters/http/routes.ts"
import { serveHttp } from "../../src/layers/HttpServer.ts"
import { SqlClient } from "effect/sql/SqlClient"
import { bearer, JWT_SECRET, PROVISIONING_KEY, record, request, signIn, str } from "../support/auth.ts"
import { baseUrl, testConfig } from "../support/http.ts"
import { deleteKeys, REDIS_URL, runPrefix } from "../support/redis.ts"
import { onFreshDatabase } from "../support/server.ts"

/**
 * One real service (Postgres, Redis, mediasoup) and "another instance" written into the same
 * Redis the way a second process registers itself: affinity redirects, the owner-gone 503,
 * admission control with its hint, the cluster listing, lost instances and the drain.
 */

const OTHER = "bridge-other/host/1/abcdef12"
const OTHER_URL = "http://10.0.0.2:8080"
const TTL_MS = 1500
const OPERATOR = { "x-provisioning-key": PROVISIONING_KEY }

const withRedis = <A>(run: (client: IORedis) => Promise<A>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => new IORedis(REDIS_URL)),
    (client) => Effect.promise(() => run(client)),
    (client) => Effect.sync(() => client.disconnect())
  )

/** Registers OTHER as alive (or only as a member, i.e. lost) under `prefix`, as its own heartbeat would. */
const registerOther = (prefix: string, options: { readonly alive: boolean; readonly sessions?: number; readonly id?: string }) =>
  withRedis(async (client) => {
    const id = options.id ?? OTHER
    const now = new Date().toISOString()
    const json = JSON.stringify({
      id,
      publicUrl: OTHER_URL,
      region: "local",
      bridgeId: "bridge-other",
      version: "0.1.0",
      capacity: 10,
      sessions: options.sessions ?? 1,
      draining: false,
      startedAt: now,
      heartbeatAt: now
    })
    await client.hset(`${prefix}cluster:members`, id, json)
    if (options.alive) await client.set(`${prefix}cluster:instance:${id}`, json, "PX", 60_000)
    else await client.del(`${prefix}cluster:instance:${id}`)
  })

/** A session in Postgres owned by `instance`, for the signed-in user, written as that instance would (not through this one). */
const sessionOwnedBy = (instance: string, user: { readonly userId: string; readonly deviceId: string }) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient
    const config = { sampleRate: 16000, channels: 1, encoding: "s16le", language: "en-US", asr: {}, aic: false, idleTimeoutSeconds: 300 }
    const rows = yield* sql<{ id: string }>`
      INSERT INTO sessions (user_id, device_id, state, config, expires_at, instance_id)
      VALUES (${user.userId}, ${user.deviceId}, 'pending', ${JSON.stringify(config)}::jsonb, now() + interval '5 minutes', ${instance})
      RETURNING id`
    return rows[0]?.id ?? ""
  }).pipe(Effect.orDie)

const server = (prefix: string, env: Record<string, string> = {}) =>
  onFreshDatabase(serveHttp(ApiRoutes, 0, "127.0.0.1"), {
    JWT_SECRET,
    AUTH_PROVISIONING_KEY: PROVISIONING_KEY,
    REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    INSTANCE_TTL_MS: String(TTL_MS),
    INSTANCE_CAPACITY: "2",
    MEDIASOUP_WORKERS: "1",
    ...env
  })

const noFollow = (path: string, headers: Record<string, string>, method = "GET") =>
  Effect.flatMap(baseUrl, (url) => Effect.promise(() => fetch(`${url}${path}`, { method, headers, redirect: "manual" })))

const prefixA = `${runPrefix()}:`
describe("cluster: one instance and a registered other", () => {
  layer(Layer.unwrap(Effect.sync(() => server(prefixA))), { timeout: 60_000, excludeTestServices: true })((it) => {
    it.effect("redirects signaling, WHIP/WHEP and events of another instance's session (307, same path and query, a ticket for Authorization)", () =>
      Effect.gen(function*() {
        yield* registerOther(prefixA, { alive: true })
        const user = yield* signIn(`cluster-${crypto.randomUUID()}`)
        const id = yield* sessionOwnedBy(OTHER, user)
        for (
          const [method, path] of [["GET", `/api/webrtc/${id}/rtp-capabilities`], ["POST", `/whip/sessions/${id}`], ["POST", `/whep/sessions/${id}`]] as const
        ) {
          const response = yield* noFollow(`${path}?x=1`, user.headers, method)
          assert.strictEqual(response.status, 307, `${method} ${path}`)
          const location = new URL(response.headers.get("location") ?? "")
          assert.strictEqual(location.origin, OTHER_URL)
          assert.strictEqual(location.pathname, path)
          assert.strictEqual(location.searchParams.get("x"), "1")
          assert.match(location.searchParams.get("auralink_redirect") ?? "", /^[A-Za-z0-9_-]{24}$/)
        }
        // No Authorization (EventSource's access_token): the query goes as it is, no ticket.
        const sse = yield* noFollow(`/api/webrtc/${id}/events?access_token=${user.token}`, {})
        assert.strictEqual(sse.status, 307)
        assert.strictEqual(sse.headers.get("location"), `${OTHER_URL}/api/webrtc/${id}/events?access_token=${user.token}`)
        // A CORS preflight is never redirected.
        const preflight = yield* noFollow(`/api/webrtc/${id}/transports`, { origin: "https://app.example", "access-control-request-method": "POST" }, "OPTIONS")
        assert.notStrictEqual(preflight.status, 307)
        // Session-independent routes are served wherever they land.
        const got = yield* request("GET", `/api/session/${id}`, undefined, user.headers)
        assert.strictEqual(got.status, 200, got.text)
      }))

    it.effect("a ticket brings the Authorization back once, for the same method and path only", () =>
      Effect.gen(function*() {
        yield* registerOther(prefixA, { alive: true })
        const user = yield* signIn(`ticket-${crypto.randomUUID()}`)
        const mine = (yield* request("POST", "/api/session", {}, user.headers)).json
        const id = str(mine["id"])
        // A ticket minted by another instance for this instance's session, as that instance's redirect does.
        const ticket = `t${crypto.randomUUID().replaceAll("-", "").slice(0, 23)}`
        const path = `/api/webrtc/${id}/rtp-capabilities`
        yield* withRedis((client) =>
          client.set(`${prefixA}cluster:redirect:${ticket}`, JSON.stringify({ authorization: user.headers.authorization, method: "GET", path }), "PX", 30_000)
        )
        const withTicket = yield* request("GET", `${path}?auralink_redirect=${ticket}`)
        assert.strictEqual(withTicket.status, 200, withTicket.text)
        const again = yield* request("GET", `${path}?auralink_redirect=${ticket}`)
        assert.strictEqual(again.status, 401, "a ticket is good once")
        const other = `u${crypto.randomUUID().replaceAll("-", "").slice(0, 23)}`
        yield* withRedis((client) =>
          client.set(`${prefixA}cluster:redirect:${other}`, JSON.stringify({ authorization: user.headers.authorization, method: "POST", path }), "PX", 30_000)
        )
        const wrongMethod = yield* request("GET", `${path}?auralink_redirect=${other}`)
        assert.strictEqual(wrongMethod.status, 401)
        yield* request("POST", `/api/session/${id}/stop`, {}, user.headers)
      }))

    it.effect("a session whose owner is gone: 503 with Retry-After, and within INSTANCE_TTL_MS it is `error` (instance lost)", () =>
      Effect.gen(function*() {
        const ghost = `bridge-ghost/host/2/${crypto.randomUUID().slice(0, 8)}`
        yield* registerOther(prefixA, { alive: false, id: ghost })
        const user = yield* signIn(`ghost-${crypto.randomUUID()}`)
        const id = yield* sessionOwnedBy(ghost, user)
        const refused = yield* request("GET", `/api/webrtc/${id}/rtp-capabilities`, undefined, user.headers)
        if (refused.status === 503) {
          assert.strictEqual(refused.headers.get("retry-after"), "2")
          assert.match(str(refused.json["detail"]), /gone/)
        } else {
          // The reaper was quicker: the session is already closed (409 / 404 from the handler).
          assert.include([404, 409], refused.status, refused.text)
        }
        const started = Date.now()
        let state = ""
        while (Date.now() - started < TTL_MS * 2) {
          state = str((yield* request("GET", `/api/session/${id}`, undefined, user.headers)).json["state"])
          if (state === "error") break
          yield* Effect.sleep("100 millis")
        }
        assert.strictEqual(state, "error")
        const session = (yield* request("GET", `/api/session/${id}`, undefined, user.headers)).json
        assert.strictEqual(session["error"], "instance lost")
        const listed = yield* request("GET", "/api/cluster", undefined, OPERATOR)
        const ids = (Array.isArray(listed.json["instances"]) ? listed.json["instances"] : []).map((i) => record(i)["id"])
        assert.notInclude(ids, ghost, "a lost instance is forgotten once its sessions ended")
        const metrics = yield* Effect.flatMap(baseUrl, (url) => Effect.promise(() => fetch(`${url}/metrics`).then((r) => r.text())))
        assert.match(metrics, /^auralink_cluster_sessions_lost_total [1-9]/m)
      }))

    it.effect("admission: the capacity's N+1st session is 503 with Retry-After and a less loaded instance; /api/cluster is for operators", () =>
      Effect.gen(function*() {
        yield* registerOther(prefixA, { alive: true, sessions: 1 })
        const user = yield* signIn(`admit-${crypto.randomUUID()}`)
        const started: Array<string> = []
        for (let i = 0; i < 2; i++) {
          const res = yield* request("POST", "/api/session", {}, user.headers)
          assert.strictEqual(res.status, 201, res.text)
          started.push(str(res.json["id"]))
        }
        const refused = yield* request("POST", "/api/session", {}, user.headers)
        assert.strictEqual(refused.status, 503, refused.text)
        assert.strictEqual(refused.headers.get("retry-after"), "2")
        assert.strictEqual(refused.json["alternate"], OTHER_URL)
        assert.match(str(refused.json["detail"]), /capacity/)
        const metrics = yield* Effect.flatMap(baseUrl, (url) => Effect.promise(() => fetch(`${url}/metrics`).then((r) => r.text())))
        assert.match(metrics, /^auralink_admission_rejected_total\{reason="capacity"\} [1-9]/m)
        assert.match(metrics, /^auralink_instance_capacity_sessions 2$/m)

        const listed = yield* request("GET", "/api/cluster", undefined, OPERATOR)
        assert.strictEqual(listed.status, 200, listed.text)
        const instances = (Array.isArray(listed.json["instances"]) ? listed.json["instances"] : []).map(record)
        const self = instances.find((i) => i["self"] === true)
        assert.strictEqual(self?.["state"], "alive")
        assert.strictEqual(self?.["capacity"], 2)
        assert.strictEqual(instances.find((i) => i["id"] === OTHER)?.["publicUrl"], OTHER_URL)
        assert.strictEqual((yield* request("GET", "/api/cluster")).status, 401)
        assert.strictEqual((yield* request("GET", "/api/cluster", undefined, bearer(user.token))).status, 401)
        for (const id of started) yield* request("POST", `/api/session/${id}/stop`, {}, user.headers)
        const again = yield* request("POST", "/api/session", {}, user.headers)
        assert.strictEqual(again.status, 201, "room again once sessions ended")
        yield* request("POST", `/api/session/${str(again.json["id"])}/stop`, {}, user.headers)
      }))
  })
})

const prefixB = `${runPrefix()}:`
describe("cluster: drain by an operator", () => {
  layer(Layer.unwrap(Effect.sync(() => server(prefixB, { DRAIN_TIMEOUT_MS: "1500" }))), { timeout: 60_000, excludeTestServices: true })((it) => {
    it.effect("POST /api/admin/drain: not ready, new sessions refused, open ones ended (shutdown) after DRAIN_TIMEOUT_MS", () =>
      Effect.gen(function*() {
        const user = yield* signIn(`drain-${crypto.randomUUID()}`)
        const open = yield* request("POST", "/api/session", {}, user.headers)
        assert.strictEqual(open.status, 201)
        assert.strictEqual((yield* request("POST", "/api/admin/drain", undefined, bearer(user.token))).status, 401)
        const drained = yield* request("POST", "/api/admin/drain", undefined, OPERATOR)
        assert.strictEqual(drained.status, 202, drained.text)
        assert.strictEqual(drained.json["sessions"], 1)
        assert.strictEqual((yield* request("GET", "/ready")).status, 503)
        const refused = yield* request("POST", "/api/session", {}, user.headers)
        assert.strictEqual(refused.status, 503)
        assert.match(str(refused.json["detail"]), /draining/)
        const id = str(open.json["id"])
        assert.strictEqual(str((yield* request("GET", `/api/session/${id}`, undefined, user.headers)).json["state"]), "pending", "kept during the drain")
        yield* Effect.sleep("2500 millis")
        const ended = (yield* request("GET", `/api/session/${id}`, undefined, user.headers)).json
        assert.strictEqual(ended["state"], "error")
        assert.strictEqual(ended["error"], "shutdown")
        const again = yield* request("POST", "/api/admin/drain", undefined, OPERATOR)
        assert.strictEqual(again.status, 202, "idempotent")
      }))
  })
})

const prefixC = `${runPrefix()}:`
describe("cluster: redirect tickets come out of the sender's budget", () => {
  layer(Layer.unwrap(Effect.sync(() => server(prefixC, { RATE_LIMIT_DEFAULT_PER_MINUTE: "3" }))), { timeout: 60_000, excludeTestServices: true })((it) => {
    it.effect("past RATE_LIMIT_DEFAULT_PER_MINUTE a request that would get a ticket is 429, and no ticket is stored", () =>
      Effect.gen(function*() {
        yield* registerOther(prefixC, { alive: true })
        const user = yield* signIn(`budget-${crypto.randomUUID()}`)
        const id = yield* sessionOwnedBy(OTHER, user)
        const statuses: Array<number> = []
        for (let i = 0; i < 5; i++) statuses.push((yield* noFollow(`/api/webrtc/${id}/rtp-capabilities`, user.headers)).status)
        assert.deepStrictEqual(statuses, [307, 307, 307, 429, 429])
        const stored = yield* withRedis((client) => client.keys(`${prefixC}cluster:redirect:*`))
        assert.strictEqual(stored.length, 3)
      }))
  })
})

describe("cluster: one instance on the embedded database", () => {
  it.live("sessions a previous run left open end at the next start (instance lost): no zombies after a crash", () =>
    Effect.gen(function*() {
      const dataDir = mkdtempSync(join(tmpdir(), "auralink-cluster-embedded-"))
      const run = <A, E>(use: Effect.Effect<A, E, Sessions | AppConfig>) =>
        Effect.scoped(Effect.gen(function*() {
          const scope = yield* Scope.make()
          const context = yield* Layer.buildWithScope(AppServices.pipe(Layer.provideMerge(testConfig({ DATA_DIR: dataDir, MEDIASOUP_WORKERS: "1" }))), scope)
          const result = yield* Effect.provideContext(use, context)
          // A crash: nothing drains (the drain runs only once shutdown began).
          yield* Scope.close(scope, Exit.void)
          return result
        }))
      const id = yield* run(Effect.flatMap(defaultConfig, (config) =>
        Sessions.use((sessions) =>
          Effect.map(
            sessions.create({
              userId: "u-crash",
              deviceId: crypto.randomUUID(),
              config,
              owner: { instance: "an-earlier-run", capacity: 10 },
              actor: "test",
              reason: "start"
            }),
            (session) => session.id
          )
        )))
      const after = yield* run(Sessions.use((sessions) => sessions.findFresh(id)))
      assert.strictEqual(after._tag === "Some" ? after.value.state : "missing", "error")
      assert.strictEqual(after._tag === "Some" ? after.value.error : null, "instance lost")
    }).pipe(Effect.orDie), 120_000)
})

describe("cluster: cleanup", () => {
  layer(Layer.empty)((it) => {
    it.effect("removes the test keys", () => Effect.promise(() => Promise.all([prefixA, prefixB, prefixC].map((prefix) => deleteKeys(`${prefix}*`)))))
  })
})
