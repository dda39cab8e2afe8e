import { assert, layer } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware } from "effect/http-api"
import { checkMetricsWithPromtool } from "../support/promtool.ts"
import { Health } from "../../src/layers/Health.ts"
import { ApiRoutes, apiRoutes, serveHttp } from "../../src/layers/HttpServer.ts"
import { AudioSink } from "../../src/layers/AudioSink.ts"
import { Database } from "../../src/layers/Database.ts"
import { Metrics } from "../../src/layers/Metrics.ts"
import { StateStore } from "../../src/layers/StateStore.ts"
import { freshDatabase } from "../support/postgres.ts"
import type { HttpServer } from "effect/http"
import { baseUrl, capturedLogs, testConfig } from "../support/http.ts"

// A probe API with a JSON body, a defect and a slow endpoint, served through the same routes
// builder, middleware and listener as the real API, for the failure paths no system endpoint has.
class ProbeGroup extends HttpApiGroup.make("probe")
  .add(
    HttpApiEndpoint.post("echo", "/probe/echo", {
      payload: Schema.Struct({ name: Schema.String, count: Schema.Int }),
      success: Schema.Struct({ name: Schema.String, count: Schema.Int })
    }),
    HttpApiEndpoint.get("crash", "/probe/crash", { success: Schema.String })
  )
{}
class ProbeApi extends HttpApi.make("probe").add(ProbeGroup).middleware(HttpApiMiddleware.ProblemDetails) {}

const ProbeHandlers = HttpApiBuilder.group(ProbeApi, "probe", (handlers) =>
  Effect.succeed(handlers.handleAll({
    echo: ({ payload }) => Effect.as(Effect.logInfo("echo handled"), payload),
    crash: () => Effect.die(new Error("secret internal detail at /src/whatever.ts:12"))
  })))

const logs = capturedLogs()
const withCore = <E, R>(server: Layer.Layer<HttpServer.HttpServer, E, R>) =>
  server.pipe(
    Layer.provideMerge(Layer.mergeAll(Health.layer, Metrics.layer)),
    Layer.provideMerge(testConfig({ HTTP_BODY_LIMIT_BYTES: "1024" })),
    Layer.provide(logs.layer)
  )
// The real API's auth handlers need Postgres and the state store: a fresh database per run.
const RealServer = Layer.unwrap(Effect.map(freshDatabase, (url) =>
  serveHttp(ApiRoutes, 0, "127.0.0.1").pipe(
    Layer.provideMerge(Layer.mergeAll(Database.layer, StateStore.layerMemory, AudioSink.layer)),
    Layer.provideMerge(Layer.mergeAll(Health.layer, Metrics.layer)),
    Layer.provideMerge(testConfig({ HTTP_BODY_LIMIT_BYTES: "1024", DATABASE_URL: url })),
    Layer.provide(logs.layer)
  )))
const ProbeServer = withCore(serveHttp(apiRoutes(ProbeApi, ProbeHandlers), 0, "127.0.0.1"))

const get = (path: string, init?: RequestInit) =>
  Effect.flatMap(baseUrl, (url) => Effect.promise(() => fetch(`${url}${path}`, init)))
const json = (response: Response) => Effect.promise((): Promise<unknown> => response.json())
const record = (value: unknown): Record<string, unknown> =>
  typeof value === "object" && value !== null ? Object.fromEntries(Object.entries(value)) : {}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

layer(RealServer)("HTTP server: system endpoints", (it) => {
  it.effect("serves liveness on /health and /healthz", () =>
    Effect.gen(function*() {
      for (const path of ["/health", "/healthz"]) {
        const response = yield* get(path)
        assert.strictEqual(response.status, 200)
        assert.strictEqual(record(yield* json(response))["status"], "healthy")
      }
    }))

  it.effect("echoes a caller's X-Request-Id, generates one otherwise, and replaces an unsafe one", () =>
    Effect.gen(function*() {
      const given = yield* get("/health", { headers: { "x-request-id": "req-42.abc" } })
      assert.strictEqual(given.headers.get("x-request-id"), "req-42.abc")
      const generated = yield* get("/health")
      assert.match(generated.headers.get("x-request-id") ?? "", UUID)
      const unsafe = yield* get("/health", { headers: { "x-request-id": "a".repeat(300) } })
      assert.match(unsafe.headers.get("x-request-id") ?? "", UUID)
    }))

  it.effect("writes one request log line with method, route, status and duration", () =>
    Effect.gen(function*() {
      yield* get("/health", { headers: { "x-request-id": "log-line-check" } })
      const line = logs.lines.find((l) => l["requestId"] === "log-line-check" && l["msg"] === "http request")
      assert.isDefined(line)
      assert.strictEqual(line?.["method"], "GET")
      assert.strictEqual(line?.["route"], "/health")
      assert.strictEqual(line?.["status"], 200)
      assert.isNumber(line?.["durationMs"])
      assert.isString(line?.["time"])
      assert.strictEqual(line?.["level"], "info")
    }))

  it.effect("reports readiness with each dependency, and 503 when a critical one is down", () =>
    Effect.gen(function*() {
      const health = yield* Health
      yield* health.register({ name: "cache", critical: false, check: Effect.fail("cache unreachable") })
      const ready = yield* get("/ready")
      assert.strictEqual(ready.status, 200)
      const body = record(yield* json(ready))
      assert.strictEqual(body["status"], "ready")
      assert.deepInclude(JSON.stringify(body["dependencies"]), "cache unreachable")

      yield* health.register({ name: "primary", critical: true, check: Effect.fail("connection refused") })
      const down = yield* get("/ready")
      assert.strictEqual(down.status, 503)
      const downBody = record(yield* json(down))
      assert.strictEqual(downBody["status"], "not_ready")
      assert.notProperty(downBody, "_tag", "the 503 body is the readiness report, not an internal error tag")
      assert.include(JSON.stringify(downBody["dependencies"]), "connection refused")
      yield* health.register({ name: "primary", critical: true, check: Effect.void })
      assert.strictEqual((yield* get("/ready")).status, 200)
    }))

  it.effect("reports service identity, uptime and component sections on /status", () =>
    Effect.gen(function*() {
      const health = yield* Health
      yield* health.section("widgets", Effect.succeed({ active: 3 }))
      const body = record(yield* json(yield* get("/status")))
      const service = record(body["service"])
      assert.strictEqual(service["name"], "ingress-egress")
      assert.strictEqual(service["bridgeId"], "bridge-local-01")
      assert.isNumber(service["uptimeSeconds"])
      assert.deepStrictEqual(record(body["components"])["widgets"], { active: 3 })
    }))

  it.effect("exposes Prometheus metrics that promtool accepts, with the request histogram by route", () =>
    Effect.gen(function*() {
      yield* get("/health")
      yield* get("/no/such/route")
      const response = yield* get("/metrics")
      assert.strictEqual(response.status, 200)
      assert.include(response.headers.get("content-type") ?? "", "text/plain")
      const text = yield* Effect.promise(() => response.text())
      assert.include(text, 'http_request_duration_seconds_count{method="GET",route="/health",status="200"}')
      assert.include(text, 'route="unmatched",status="404"')
      assert.include(text, "process_cpu_seconds_total")
      const verdict = checkMetricsWithPromtool(text)
      assert.strictEqual(verdict.status, 0, verdict.output)
    }))

  it.effect("publishes the OpenAPI document and a docs page", () =>
    Effect.gen(function*() {
      const spec = record(yield* json(yield* get("/openapi.json")))
      assert.strictEqual(spec["openapi"], "3.1.0")
      for (const path of ["/health", "/healthz", "/ready", "/status", "/metrics"]) {
        assert.property(record(spec["paths"]), path)
      }
      const docs = yield* get("/docs")
      assert.strictEqual(docs.status, 200)
      assert.include(docs.headers.get("content-type") ?? "", "text/html")
    }))

  it.effect("answers an unknown route with a 404 problem", () =>
    Effect.gen(function*() {
      const response = yield* get("/nope?x=1", { headers: { "x-request-id": "nf-1" } })
      assert.strictEqual(response.status, 404)
      assert.strictEqual(response.headers.get("content-type"), "application/problem+json")
      const body = record(yield* json(response))
      assert.strictEqual(body["status"], 404)
      assert.strictEqual(body["title"], "Not Found")
      assert.strictEqual(body["requestId"], "nf-1")
    }))

  // Last in this block: shutdown is one-way for the shared Health service.
  it.effect("turns /ready to 503 once shutdown has begun, while /health stays 200", () =>
    Effect.gen(function*() {
      const health = yield* Health
      yield* health.beginShutdown
      const ready = yield* get("/ready")
      assert.strictEqual(ready.status, 503)
      assert.strictEqual(record(yield* json(ready))["shuttingDown"], true)
      assert.strictEqual((yield* get("/health")).status, 200)
    }))
})

const post = (path: string, body: string, headers: Record<string, string> = {}) =>
  get(path, { method: "POST", body, headers: { "content-type": "application/json", ...headers } })

layer(ProbeServer)("HTTP server: bad input and failures", (it) => {
  it.effect("accepts a valid body and tags the handler's log lines with the request id", () =>
    Effect.gen(function*() {
      const response = yield* post("/probe/echo", JSON.stringify({ name: "a", count: 1 }), { "x-request-id": "echo-1" })
      assert.strictEqual(response.status, 200)
      assert.deepStrictEqual(yield* json(response), { name: "a", count: 1 })
      const handlerLine = logs.lines.find((l) => l["msg"] === "echo handled")
      assert.strictEqual(handlerLine?.["requestId"], "echo-1")
    }))

  it.effect("answers malformed JSON with a 400 problem", () =>
    Effect.gen(function*() {
      const response = yield* post("/probe/echo", "{\"name\": ")
      assert.strictEqual(response.status, 400)
      assert.strictEqual(response.headers.get("content-type"), "application/problem+json")
      assert.strictEqual(record(yield* json(response))["status"], 400)
    }))

  it.effect("answers a schema failure with a 400 problem naming the field", () =>
    Effect.gen(function*() {
      const response = yield* post("/probe/echo", JSON.stringify({ name: "a", count: "many" }))
      assert.strictEqual(response.status, 400)
      const body = record(yield* json(response))
      assert.include(JSON.stringify(body["errors"]), "count")
    }))

  it.effect("answers a body over the configured limit with 413", () =>
    Effect.gen(function*() {
      const response = yield* post("/probe/echo", JSON.stringify({ name: "x".repeat(4096), count: 1 }))
      assert.strictEqual(response.status, 413)
      assert.strictEqual(record(yield* json(response))["status"], 413)
    }))

  it.effect("answers a defect with a 500 problem carrying the request id and no internals", () =>
    Effect.gen(function*() {
      const response = yield* get("/probe/crash", { headers: { "x-request-id": "boom-1" } })
      assert.strictEqual(response.status, 500)
      const text = yield* Effect.promise(() => response.text())
      const body = record(JSON.parse(text))
      assert.strictEqual(body["requestId"], "boom-1")
      assert.notInclude(text, "secret internal detail")
      assert.notInclude(text, ".ts:")
      const logged = logs.lines.find((l) => l["requestId"] === "boom-1" && l["level"] === "error")
      assert.isDefined(logged)
    }))
})
