import { assert, layer } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Option, Scope } from "effect"
import { ApiRoutes } from "../../src/adapters/http/routes.ts"
import { Dashboard } from "../../src/layers/Dashboard.ts"
import { Health } from "../../src/layers/Health.ts"
import { serveHttp } from "../../src/layers/HttpServer.ts"
import { Metrics } from "../../src/layers/Metrics.ts"
import { SERVICE_VERSION } from "../../src/config/settings.ts"
import { JWT_SECRET, PROVISIONING_KEY, record, request, signIn } from "../support/auth.ts"
import { FakeDashboard, type Received } from "../support/fake-dashboard.ts"
import { capturedLogs, testConfig } from "../support/http.ts"
import { onFreshDatabase } from "../support/server.ts"
import { startedFake } from "../support/fake-server.ts"

const API_KEY = "dashboard-test-key-0123456789"
const HEARTBEAT_MS = 200
const PUBLIC_URL = "https://bridge-1.example.test"

/** The fake Dashboard the shared stack registers with. */
class Fake extends Context.Service<Fake, FakeDashboard>()("test/FakeDashboard") {}

const startFake = startedFake(() => new FakeDashboard({ apiKey: API_KEY }))

const unique = (name: string) => `${name}-${crypto.randomUUID().slice(0, 8)}`
const BRIDGE_ID = unique("bridge-test")

/** The service's settings pointing at `url`: short heartbeat and retry periods, one media worker. */
const dashboardEnv = (url: string, bridgeId: string, apiKey = API_KEY) => ({
  DASHBOARD_URL: url,
  DASHBOARD_API_KEY: apiKey,
  DASHBOARD_HEARTBEAT_MS: String(HEARTBEAT_MS),
  DASHBOARD_RETRY_BASE_MS: "50",
  DASHBOARD_RETRY_MAX_MS: "200",
  DASHBOARD_TIMEOUT_MS: "1000",
  BRIDGE_ID: bridgeId,
  REGION: "eu-test-1",
  PUBLIC_URL,
  MEDIASOUP_WORKERS: "1",
  JWT_SECRET,
  AUTH_PROVISIONING_KEY: PROVISIONING_KEY,
  RATE_LIMIT_DEFAULT_PER_MINUTE: "100000",
  RATE_LIMIT_SESSION_PER_MINUTE: "100000"
})

const stack = (url: string, bridgeId: string) => onFreshDatabase(serveHttp(ApiRoutes, 0, "127.0.0.1"), dashboardEnv(url, bridgeId))

const Server = Layer.unwrap(Fake.use((fake) => Effect.succeed(stack(fake.url, BRIDGE_ID)))).pipe(
  Layer.provideMerge(Layer.effect(Fake, startFake))
)

const sleep = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

/** Polls until `check` holds or `timeoutMs` passes. */
const eventually = <E, R>(timeoutMs: number, what: string, check: Effect.Effect<boolean, E, R>) =>
  Effect.gen(function*() {
    const started = performance.now()
    while (!(yield* check)) {
      if (performance.now() - started > timeoutMs) return assert.fail(`${what}: not within ${timeoutMs} ms`)
      yield* sleep(20)
    }
  })

const heartbeatsOf = (fake: FakeDashboard, bridgeId: string): ReadonlyArray<Received> => fake.heartbeats.filter((h) => h.bridgeId === bridgeId)

/** Builds `layer` afresh (its own memo map: nothing shared with the file's stack) in a scope the test closes. */
const buildApart = <A, E, R>(l: Layer.Layer<A, E, R>) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithMemoMap(l, yield* Layer.makeMemoMap, scope)
    return { context, close: Scope.close(scope, Exit.void) }
  })

const metricValue = (text: string, name: string, result: string) => {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{result="${result}"}`))
  return line === undefined ? undefined : Number(line.split(" ").at(-1))
}

layer(Server, { excludeTestServices: true, timeout: "120 seconds" })("Dashboard registration", (it) => {
  it.effect("registers at start with the bridge's identity, features and capacity", () =>
    Effect.gen(function*() {
      const fake = yield* Fake
      const dashboard = yield* Dashboard
      yield* eventually(5000, "registration", Effect.map(dashboard.state, (s) => s.registered))
      const body = record(fake.registrations.find((r) => r.bridgeId === BRIDGE_ID)?.body)
      assert.strictEqual(body["bridgeId"], BRIDGE_ID)
      assert.strictEqual(body["region"], "eu-test-1")
      assert.strictEqual(body["version"], SERVICE_VERSION)
      assert.strictEqual(body["publicUrl"], PUBLIC_URL)
      assert.deepStrictEqual(body["features"], { aic: true, sip: false, rtmp: false })
      assert.deepStrictEqual(body["capacity"], { mediaWorkers: 1 })
      assert.isNumber(body["startedAt"])
    }))

  it.effect("sends heartbeats at the interval with load figures", () =>
    Effect.gen(function*() {
      const fake = yield* Fake
      const user = yield* signIn(unique("dash-user"))
      const session = yield* request("POST", "/api/session", {}, user.headers)
      assert.strictEqual(session.status, 201, session.text)
      const before = heartbeatsOf(fake, BRIDGE_ID).length
      yield* eventually(5000, "five heartbeats", Effect.sync(() => heartbeatsOf(fake, BRIDGE_ID).length >= before + 5))
      const recent = heartbeatsOf(fake, BRIDGE_ID).slice(before)
      const gaps = recent.slice(1).map((h, i) => h.at - (recent[i]?.at ?? 0))
      const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length
      assert.isAtLeast(Math.min(...gaps), HEARTBEAT_MS * 0.5, `gaps ${gaps.join(", ")}`)
      assert.isAtMost(mean, HEARTBEAT_MS * 3, `gaps ${gaps.join(", ")}`)
      const last = record(recent.at(-1)?.body)
      assert.strictEqual(last["bridgeId"], BRIDGE_ID)
      const load = record(last["load"])
      assert.isAtLeast(Number(load["sessions"]), 1)
      assert.strictEqual(load["participants"], 0)
      assert.isAtLeast(Number(load["cpuPercent"]), 0)
      assert.deepStrictEqual(Object.keys(record(load["aic"])).sort(), ["bandwidthSavedBytes", "framesCompressed", "framesProcessed", "pipelines"])
      const state = yield* (yield* Dashboard).state
      assert.isTrue(Option.isSome(state.lastHeartbeatAt))
    }))

  it.effect("registers again when the Dashboard forgets the bridge", () =>
    Effect.gen(function*() {
      const fake = yield* Fake
      yield* eventually(5000, "registration", Effect.sync(() => fake.bridges.has(BRIDGE_ID)))
      const registrations = fake.registrations.length
      fake.forget(BRIDGE_ID)
      yield* eventually(5000, "re-registration", Effect.sync(() => fake.registrations.length > registrations && fake.bridges.has(BRIDGE_ID)))
      assert.isTrue(fake.rejected.some((r) => r.status === 404 && r.path.endsWith("/heartbeat")))
      const [first, again] = [fake.registrations.find((r) => r.bridgeId === BRIDGE_ID), fake.registrations.at(-1)]
      assert.strictEqual(record(again?.body)["startedAt"], record(first?.body)["startedAt"])
      const resumed = heartbeatsOf(fake, BRIDGE_ID).length
      yield* eventually(5000, "heartbeats after re-registration", Effect.sync(() => heartbeatsOf(fake, BRIDGE_ID).length > resumed))
      const state = yield* (yield* Dashboard).state
      assert.isTrue(state.registered)
      assert.isAtLeast(state.heartbeats.failed, 1)
    }))

  it.effect("reports in /status, /ready and /metrics", () =>
    Effect.gen(function*() {
      const fake = yield* Fake
      yield* eventually(5000, "a heartbeat", Effect.sync(() => heartbeatsOf(fake, BRIDGE_ID).length > 0))
      const status = yield* request("GET", "/status", undefined, { "x-provisioning-key": PROVISIONING_KEY })
      const section = record(status.json["dashboard"])
      assert.strictEqual(section["registered"], true)
      assert.strictEqual(section["bridge_id"], BRIDGE_ID)
      assert.isString(section["last_heartbeat_at"])
      assert.isAtLeast(Number(record(section["heartbeats"])["ok"]), 1)
      assert.isNumber(record(section["heartbeats"])["failed"])

      const ready = yield* request("GET", "/ready")
      const dependency = record(record(ready.json["dependencies"])["dashboard"])
      assert.strictEqual(dependency["status"], "up")
      assert.strictEqual(dependency["critical"], false)

      const metrics = (yield* request("GET", "/metrics")).text
      assert.isAtLeast(metricValue(metrics, "auralink_dashboard_registrations_total", "ok") ?? 0, 1)
      assert.isAtLeast(metricValue(metrics, "auralink_dashboard_heartbeats_total", "ok") ?? 0, 1)
      assert.isDefined(metricValue(metrics, "auralink_dashboard_heartbeats_total", "failed"))
    }))

  it.effect("a wrong API key: failures counted, retried, nothing crashes", () =>
    Effect.gen(function*() {
      const fake = yield* Fake
      const bridgeId = unique("bridge-wrong-key")
      const own = Layer.mergeAll(testConfig(dashboardEnv(fake.url, bridgeId, "not-the-key")), Metrics.layer, Health.layer)
      const built = yield* buildApart(Layer.provideMerge(Dashboard.layer, own))
      const dashboard = Context.get(built.context, Dashboard)
      yield* eventually(5000, "three refused registrations", Effect.map(dashboard.state, (s) => s.registrations.failed >= 3))
      const state = yield* dashboard.state
      assert.isFalse(state.registered)
      assert.include(Option.getOrElse(state.lastError, () => ""), "401")
      assert.isFalse(fake.bridges.has(bridgeId))
      const metrics = yield* Effect.promise(() => Context.get(built.context, Metrics).registry.metrics())
      assert.isAtLeast(metricValue(metrics, "auralink_dashboard_registrations_total", "failed") ?? 0, 3)
      const readiness = yield* Context.get(built.context, Health).readiness
      const dependency = readiness.dependencies["dashboard"]
      assert.strictEqual(dependency?.status, "down")
      assert.isTrue(readiness.ready)
      yield* built.close
      assert.isFalse(fake.deregistrations.some((d) => d.bridgeId === bridgeId))
    }))

  it.effect("heartbeats at the period the Dashboard names in its registration answer", () =>
    Effect.gen(function*() {
      const fake = yield* startFake
      fake.heartbeatIntervalMs = 50
      const bridgeId = unique("bridge-paced")
      const env = { ...dashboardEnv(fake.url, bridgeId), DASHBOARD_HEARTBEAT_MS: "60000" }
      const built = yield* buildApart(Layer.provideMerge(Dashboard.layer, Layer.mergeAll(testConfig(env), Metrics.layer, Health.layer)))
      yield* eventually(3000, "heartbeats at 50 ms", Effect.sync(() => heartbeatsOf(fake, bridgeId).length >= 5))
      yield* built.close
      assert.deepStrictEqual(fake.deregistrations.map((d) => d.bridgeId), [bridgeId])
    }))

  it.effect("DASHBOARD_URL unset: off, said in the log, no readiness check", () =>
    Effect.gen(function*() {
      const logs = capturedLogs()
      const own = Layer.mergeAll(testConfig({ BRIDGE_ID: unique("bridge-off") }), Metrics.layer, Health.layer, logs.layer)
      const built = yield* buildApart(Layer.provideMerge(Dashboard.layer, own))
      const state = yield* Context.get(built.context, Dashboard).state
      assert.isFalse(state.enabled)
      assert.isFalse(state.registered)
      assert.isTrue(logs.lines.some((l) => l["msg"] === "dashboard registration off: DASHBOARD_URL unset"), JSON.stringify(logs.lines))
      const readiness = yield* Context.get(built.context, Health).readiness
      assert.strictEqual(readiness.dependencies["dashboard"]?.status, "unconfigured")
      const sections = yield* Context.get(built.context, Health).sections
      assert.strictEqual(record(sections["dashboard"])["enabled"], false)
      yield* built.close
    }))

  it.effect("with the Dashboard down the service starts and serves, registers when it comes back, deregisters at shutdown", () =>
    Effect.gen(function*() {
      const fake = yield* startFake
      yield* Effect.promise(() => fake.down())
      const bridgeId = unique("bridge-late")
      const built = yield* buildApart(stack(fake.url, bridgeId))
      const inService = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, built.context)

      const health = yield* inService(request("GET", "/health"))
      assert.strictEqual(health.status, 200)
      const ready = yield* inService(request("GET", "/ready"))
      assert.strictEqual(ready.status, 200, ready.text)
      const dependency = record(record(ready.json["dependencies"])["dashboard"])
      assert.strictEqual(dependency["status"], "down")
      const dashboard = Context.get(built.context, Dashboard)
      yield* eventually(5000, "failed attempts", Effect.map(dashboard.state, (s) => s.registrations.failed >= 2))

      yield* Effect.promise(() => fake.up())
      yield* eventually(5000, "registration once up", Effect.sync(() => fake.bridges.has(bridgeId)))
      yield* eventually(5000, "a heartbeat", Effect.sync(() => heartbeatsOf(fake, bridgeId).length > 0))
      assert.isTrue((yield* dashboard.state).registered)

      yield* built.close
      assert.deepStrictEqual(fake.deregistrations.map((d) => d.bridgeId), [bridgeId])
      assert.isFalse(fake.bridges.has(bridgeId))
    }))
})
