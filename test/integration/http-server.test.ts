import { assert, layer } from "@effect/vitest"
import { Effect, Layer, Schema, Stream } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { createHash } from "node:crypto"
import { connect, type Socket } from "node:net"
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware } from "effect/http-api"
import { checkMetricsWithPromtool } from "../support/promtool.ts"
import { Health } from "../../src/layers/Health.ts"
import { ApiRoutes } from "../../src/adapters/http/routes.ts"
import { apiRoutes, serveHttp } from "../../src/layers/HttpServer.ts"
import { AudioSink } from "../../src/layers/AudioSink.ts"
import { Database } from "../../src/layers/Database.ts"
import { Metrics } from "../../src/layers/Metrics.ts"
import { StateStore } from "../../src/layers/StateStore.ts"
import { SharedServices } from "../../src/main.ts"
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
/** The web app origin the real server's CORS_ORIGINS allows. */
const WEB_APP = "https://app.example"
// The real API's auth handlers need Postgres and the state store: a fresh database per run.
const RealServer = Layer.unwrap(Effect.map(freshDatabase, (url) =>
  serveHttp(ApiRoutes, 0, "127.0.0.1").pipe(
    Layer.provideMerge(SharedServices),
    Layer.provideMerge(Layer.mergeAll(Database.layer, StateStore.layerMemory, AudioSink.layer)),
    Layer.provideMerge(Layer.mergeAll(Health.layer, Metrics.layer)),
    Layer.provideMerge(testConfig({ HTTP_BODY_LIMIT_BYTES: "1024", DATABASE_URL: url, CORS_ORIGINS: `${WEB_APP}, http://127.0.0.1:5173` })),
    Layer.provide(logs.layer)
  )))
const ProbeServer = withCore(serveHttp(apiRoutes(ProbeApi, ProbeHandlers), 0, "127.0.0.1"))

const get = (path: string, init?: RequestInit) => Effect.flatMap(baseUrl, (url) => Effect.promise(() => fetch(`${url}${path}`, init)))
const json = (response: Response) => Effect.promise((): Promise<unknown> => response.json())
const record = (value: unknown): Record<string, unknown> => typeof value === "object" && value !== null ? Object.fromEntries(Object.entries(value)) : {}

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

  it.effect("reports readiness with each dependency by name, and 503 when a critical one is down", () =>
    Effect.gen(function*() {
      const health = yield* Health
      yield* health.register({ name: "cache", critical: false, check: Effect.fail("cache unreachable") })
      const ready = yield* get("/ready")
      assert.strictEqual(ready.status, 200)
      const body = record(yield* json(ready))
      assert.strictEqual(body["status"], "ready")
      const dependencies = record(body["dependencies"])
      // The seed's dependencies first (unconfigured ones too), then the others registered.
      assert.deepStrictEqual(Object.keys(dependencies).slice(0, 6), ["postgres", "redis", "dashboard", "ai_core", "webrtc_server", "communication_service"])
      assert.deepInclude(record(dependencies["postgres"]), { status: "up", lastError: null, critical: true })
      assert.isNumber(record(dependencies["postgres"])["latencyMs"])
      assert.deepStrictEqual(dependencies["dashboard"], { status: "unconfigured", latencyMs: null, lastError: null, critical: false })
      assert.deepInclude(record(dependencies["cache"]), { status: "down", lastError: "cache unreachable", critical: false })

      yield* health.register({ name: "primary", critical: true, check: Effect.fail("connection refused") })
      const down = yield* get("/ready")
      assert.strictEqual(down.status, 503)
      const downBody = record(yield* json(down))
      assert.strictEqual(downBody["status"], "not_ready")
      assert.notProperty(downBody, "_tag", "the 503 body is the readiness report, not an internal error tag")
      assert.include(JSON.stringify(downBody["dependencies"]), "connection refused")
      yield* health.register({ name: "primary", critical: true, check: Effect.void })
      const again = yield* get("/ready")
      assert.strictEqual(again.status, 200)
      // Up again, with the last failure still there to read.
      assert.deepInclude(record(record(record(yield* json(again))["dependencies"])["primary"]), { status: "up", lastError: "connection refused" })
    }))

  it.effect("reports service identity, uptime and the sections at the top level of /status", () =>
    Effect.gen(function*() {
      const health = yield* Health
      yield* health.section("widgets", Effect.succeed({ active: 3 }))
      const body = record(yield* json(yield* get("/status")))
      const service = record(body["service"])
      assert.strictEqual(service["name"], "ingress-egress")
      assert.strictEqual(service["bridgeId"], "bridge-local-01")
      assert.isNumber(service["uptimeSeconds"])
      assert.deepStrictEqual(body["widgets"], { active: 3 })
      assert.notProperty(body, "components")
      for (const name of ["aic_compression", "room_sync", "database", "redis", "auraid", "dashboard", "sessions"]) assert.property(body, name)
      // No REDIS_URL here: the in-memory state store, and the redis section says so.
      assert.deepStrictEqual(body["redis"], { status: "unconfigured" })
      const database = record(body["database"])
      assert.strictEqual(database["backend"], "postgres")
      assert.deepInclude(record(database["pool"]), { max: 20, active: 0 })
      for (const field of ["total", "idle"]) assert.isNumber(record(database["pool"])[field])
      // The public view has no room for null: `waiting` (not observable) is left out of it.
      assert.notProperty(record(database["pool"]), "waiting")
    }))

  it.effect("exposes Prometheus metrics that promtool accepts, with the request histogram by route", () =>
    Effect.gen(function*() {
      yield* get("/health")
      yield* get("/no/such/route")
      const scrape = Effect.gen(function*() {
        const response = yield* get("/metrics")
        assert.strictEqual(response.status, 200)
        assert.include(response.headers.get("content-type") ?? "", "text/plain")
        return yield* Effect.promise(() => response.text())
      })
      // Nothing else runs but the readiness probe's own query, which may hold a connection at a given scrape.
      let text = yield* scrape
      for (let tries = 0; !/^auralink_db_connections_active 0$/m.test(text) && tries < 40; tries++) {
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 25))) // real time, not the TestClock
        text = yield* scrape
      }
      assert.include(text, "http_request_duration_seconds_count{method=\"GET\",route=\"/health\",status=\"200\"}")
      assert.include(text, "route=\"unmatched\",status=\"404\"")
      assert.include(text, "process_cpu_seconds_total")
      // The seed's infrastructure gauges (the Redis one is in test/integration/redis.test.ts: no REDIS_URL here).
      assert.match(text, /^auralink_db_connections_active 0$/m)
      assert.match(text, /^auralink_db_connections_idle [1-9]\d*$/m)
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
      // /ready's dependencies: an object by name, each entry's status one of three.
      const ready = JSON.stringify(record(record(record(spec["paths"])["/ready"])["get"])["responses"])
      assert.include(
        ready,
        `"dependencies":{"type":"object","additionalProperties":{"type":"object","properties":{"status":{"type":"string","enum":["up","down","unconfigured"]}`
      )
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

  it.effect("every response tells browsers: nosniff, no referrer, never framed, and a CSP (API: nothing may load)", () =>
    Effect.gen(function*() {
      for (const [path, init] of [["/health", {}], ["/nope", {}], ["/openapi.json", {}], ["/api/session", { method: "POST", body: "{" }]] as const) {
        const response = yield* get(path, init)
        const label = `${path} ${response.status}`
        assert.strictEqual(response.headers.get("x-content-type-options"), "nosniff", label)
        assert.strictEqual(response.headers.get("referrer-policy"), "no-referrer", label)
        assert.strictEqual(response.headers.get("x-frame-options"), "DENY", label)
        const csp = response.headers.get("content-security-policy") ?? ""
        assert.include(csp, "default-src 'none'", label)
        assert.include(csp, "frame-ancestors 'none'", label)
      }
    }))

  it.effect("the docs page's CSP allows its own inline scripts by hash and nothing from elsewhere", () =>
    Effect.gen(function*() {
      const docs = yield* get("/docs")
      const html = yield* Effect.promise(() => docs.text())
      const csp = docs.headers.get("content-security-policy") ?? ""
      const inline = [...html.matchAll(/<script(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/gi)].map((m) => m[1] ?? "")
      assert.isAbove(inline.length, 0)
      for (const script of inline) assert.include(csp, `'sha256-${createHash("sha256").update(script).digest("base64")}'`)
      assert.include(csp, "default-src 'self'")
      assert.include(csp, "connect-src 'self'")
      assert.include(csp, "frame-ancestors 'none'")
      assert.notInclude(csp, "unsafe-eval")
      assert.notMatch(csp, /script-src[^;]*'unsafe-inline'/)
    }))

  it.effect("CORS: a preflight from an allowed origin is answered with the methods and headers a web app needs", () =>
    Effect.gen(function*() {
      const preflight = yield* get("/api/session", {
        method: "OPTIONS",
        headers: { origin: WEB_APP, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" }
      })
      assert.strictEqual(preflight.status, 204)
      assert.strictEqual(preflight.headers.get("access-control-allow-origin"), WEB_APP)
      const methods = preflight.headers.get("access-control-allow-methods") ?? ""
      for (const method of ["GET", "POST", "PATCH", "DELETE"]) assert.include(methods, method)
      const allowed = (preflight.headers.get("access-control-allow-headers") ?? "").toLowerCase()
      for (const header of ["authorization", "content-type", "x-request-id"]) assert.include(allowed, header)
      assert.include(preflight.headers.get("vary") ?? "", "Origin")

      const actual = yield* get("/health", { headers: { origin: WEB_APP } })
      assert.strictEqual(actual.headers.get("access-control-allow-origin"), WEB_APP)
      const exposed = (actual.headers.get("access-control-expose-headers") ?? "").toLowerCase()
      for (const header of ["location", "etag", "retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "x-request-id"]) {
        assert.include(exposed, header)
      }
      assert.include(actual.headers.get("vary") ?? "", "Origin")
      // Errors carry them too, so the web app can read a problem.
      const missing = yield* get("/api/session", { method: "POST", body: "{}", headers: { origin: WEB_APP, "content-type": "application/json" } })
      assert.strictEqual(missing.status, 401)
      assert.strictEqual(missing.headers.get("access-control-allow-origin"), WEB_APP)
    }))

  it.effect("CORS: other origins get no CORS headers, and their preflight is refused", () =>
    Effect.gen(function*() {
      const preflight = yield* get("/api/session", { method: "OPTIONS", headers: { origin: "https://evil.example", "access-control-request-method": "POST" } })
      assert.strictEqual(preflight.status, 403)
      assert.isNull(preflight.headers.get("access-control-allow-origin"))
      const actual = yield* get("/health", { headers: { origin: "https://evil.example" } })
      assert.strictEqual(actual.status, 200)
      assert.isNull(actual.headers.get("access-control-allow-origin"))
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

  it.effect("CORS is off by default: no CORS headers for any origin, preflights refused", () =>
    Effect.gen(function*() {
      const actual = yield* post("/probe/echo", JSON.stringify({ name: "a", count: 1 }), { origin: "https://app.example" })
      assert.strictEqual(actual.status, 200)
      assert.isNull(actual.headers.get("access-control-allow-origin"))
      assert.strictEqual(actual.headers.get("x-content-type-options"), "nosniff")
      const preflight = yield* get("/probe/echo", { method: "OPTIONS", headers: { origin: "https://app.example", "access-control-request-method": "POST" } })
      assert.strictEqual(preflight.status, 403)
      assert.isNull(preflight.headers.get("access-control-allow-origin"))
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

// ---- listener limits: timeouts and the connection cap, with raw sockets ----

const HEADERS_TIMEOUT_MS = 1000
const REQUEST_TIMEOUT_MS = 1500
const KEEPALIVE_TIMEOUT_MS = 300
const MAX_CONNECTIONS = 4
/** A response that takes longer than the request timeout (like an SSE stream): 6 ticks 400 ms apart. */
const SlowStream = HttpRouter.add(
  "GET",
  "/probe/stream",
  HttpServerResponse.stream(
    // Wall-clock waits: the test layer's clock is the TestClock, which a listener's fiber would wait on forever.
    Stream.range(1, 6).pipe(
      Stream.mapEffect((i) =>
        Effect.promise(() => new Promise<Uint8Array>((resolve) => setTimeout(() => resolve(new TextEncoder().encode(`tick ${i}\n`)), 400)))
      )
    ),
    { contentType: "text/plain" }
  )
)
const LimitedServer = serveHttp(Layer.mergeAll(apiRoutes(ProbeApi, ProbeHandlers), SlowStream), 0, "127.0.0.1").pipe(
  Layer.provideMerge(Layer.mergeAll(Health.layer, Metrics.layer)),
  Layer.provideMerge(testConfig({
    HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
    HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    HTTP_KEEPALIVE_TIMEOUT_MS: String(KEEPALIVE_TIMEOUT_MS),
    HTTP_MAX_CONNECTIONS: String(MAX_CONNECTIONS)
  })),
  Layer.provide(logs.layer)
)

interface RawConnection {
  readonly socket: Socket
  /** Everything the server sent so far. */
  readonly received: () => string
  /** Resolves with ms since connect when the server closes the connection, or undefined after `withinMs`. */
  readonly closed: (withinMs: number) => Promise<number | undefined>
}

/** A TCP connection to the listener that the test writes to byte by byte, as a slowloris client would. */
const rawConnection = Effect.fn(function*() {
  const url = new URL(yield* baseUrl)
  return yield* Effect.promise(() =>
    new Promise<RawConnection>((resolve) => {
      const socket = connect(Number(url.port), url.hostname)
      const openedAt = performance.now()
      let data = ""
      let closedAfter: number | undefined
      const onClose = new Promise<number>((done) =>
        socket.once("close", () => {
          closedAfter = performance.now() - openedAt
          done(closedAfter)
        })
      )
      socket.on("data", (chunk) => (data += chunk.toString()))
      socket.on("error", () => {}) // a reset by the server shows as "close"
      socket.once("connect", () =>
        resolve({
          socket,
          received: () => data,
          closed: (withinMs) =>
            closedAfter !== undefined
              ? Promise.resolve(closedAfter)
              : Promise.race([onClose, new Promise<undefined>((done) => setTimeout(() => done(undefined), withinMs))])
        }))
    })
  )
})

/** Writes `text` one byte every `everyMs` until the socket closes (or `stop` is called). */
const drip = (socket: Socket, text: string, everyMs: number) => {
  let i = 0
  const timer = setInterval(() => {
    if (socket.destroyed) return clearInterval(timer)
    socket.write(text[i % text.length] ?? " ")
    i++
  }, everyMs)
  return () => clearInterval(timer)
}

const waitFor = (check: () => boolean, withinMs: number) =>
  Effect.promise(async () => {
    const until = performance.now() + withinMs
    while (!check() && performance.now() < until) await new Promise((r) => setTimeout(r, 20))
    return check()
  })

layer(LimitedServer, { timeout: 60_000 })("HTTP server: listener timeouts and connection cap", (it) => {
  it.effect("slow headers (slowloris) are answered 408 and closed at HTTP_HEADERS_TIMEOUT_MS, not Node's 60 s", () =>
    Effect.gen(function*() {
      const conn = yield* rawConnection()
      conn.socket.write("GET /probe/none HTTP/1.1\r\nHost: probe\r\n")
      const stop = drip(conn.socket, "X-Slow-Header: aaaaaaaaaaaaaaaaaaaaaaaa", 100)
      const closedAfter = yield* Effect.promise(() => conn.closed(8000))
      stop()
      assert.isDefined(closedAfter, "the connection is still open after 8 s")
      assert.isAtLeast(closedAfter ?? 0, HEADERS_TIMEOUT_MS * 0.9)
      assert.match(conn.received(), /^HTTP\/1\.1 408/)
    }))

  it.effect("a connection that sends nothing is closed at HTTP_HEADERS_TIMEOUT_MS too", () =>
    Effect.gen(function*() {
      const conn = yield* rawConnection()
      const closedAfter = yield* Effect.promise(() => conn.closed(8000))
      assert.isDefined(closedAfter, "the idle connection is still open after 8 s")
      assert.isAtLeast(closedAfter ?? 0, HEADERS_TIMEOUT_MS * 0.9)
    }))

  it.effect("a slow body is cut off at HTTP_REQUEST_TIMEOUT_MS, not Node's 300 s", () =>
    Effect.gen(function*() {
      const conn = yield* rawConnection()
      conn.socket.write("POST /probe/echo HTTP/1.1\r\nHost: probe\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"name\":\"")
      const stop = drip(conn.socket, "a", 100)
      const closedAfter = yield* Effect.promise(() => conn.closed(10_000))
      stop()
      assert.isDefined(closedAfter, "the slow body is still being accepted after 10 s")
      assert.isAtLeast(closedAfter ?? 0, REQUEST_TIMEOUT_MS * 0.9)
      assert.notInclude(conn.received(), "HTTP/1.1 200")
    }))

  it.effect("a response longer than the request timeout (an SSE-like stream) is not cut", () =>
    Effect.gen(function*() {
      const conn = yield* rawConnection()
      conn.socket.write("GET /probe/stream HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
      const closedAfter = yield* Effect.promise(() => conn.closed(15_000))
      assert.isDefined(closedAfter, JSON.stringify(conn.received()))
      assert.isAbove(closedAfter ?? 0, REQUEST_TIMEOUT_MS)
      assert.match(conn.received(), /^HTTP\/1\.1 200/)
      for (let i = 1; i <= 6; i++) assert.include(conn.received(), `tick ${i}`)
    }))

  it.effect("an idle keep-alive connection is closed after HTTP_KEEPALIVE_TIMEOUT_MS (plus Node's 1 s buffer)", () =>
    Effect.gen(function*() {
      const conn = yield* rawConnection()
      conn.socket.write("GET /probe/none HTTP/1.1\r\nHost: probe\r\n\r\n")
      assert.isTrue(yield* waitFor(() => conn.received().includes("\"status\":404"), 5000), conn.received())
      const answeredAt = performance.now()
      const closedAfter = yield* Effect.promise(() => conn.closed(5000))
      assert.isDefined(closedAfter, "the idle keep-alive connection is still open 5 s after its response (Node's default: 5 s + 1 s)")
      assert.isAtLeast(performance.now() - answeredAt, KEEPALIVE_TIMEOUT_MS * 0.9)
    }))

  it.effect("connections past HTTP_MAX_CONNECTIONS are refused at once; a slot frees when one closes", () =>
    Effect.gen(function*() {
      const held: Array<RawConnection> = []
      for (let i = 0; i < MAX_CONNECTIONS; i++) {
        const conn = yield* rawConnection()
        conn.socket.write("GET /probe/stream HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
        held.push(conn)
      }
      for (const conn of held) assert.isTrue(yield* waitFor(() => conn.received().startsWith("HTTP/1.1 200"), 5000))
      const extra = yield* rawConnection()
      extra.socket.write("GET /probe/none HTTP/1.1\r\nHost: probe\r\n\r\n")
      const refusedAfter = yield* Effect.promise(() => extra.closed(1000))
      assert.isDefined(refusedAfter, "a connection past the cap was kept")
      assert.strictEqual(extra.received(), "", "a refused connection gets no response")
      // The held ones are untouched: each stream completes.
      for (const conn of held) assert.isDefined(yield* Effect.promise(() => conn.closed(15_000)))
      for (const conn of held) assert.include(conn.received(), "tick 6")
      const after = yield* rawConnection()
      after.socket.write("GET /probe/none HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
      assert.isTrue(yield* waitFor(() => after.received().includes("\"status\":404"), 5000), after.received())
    }))
})
