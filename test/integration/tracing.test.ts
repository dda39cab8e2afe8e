import { assert, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { AudioSink } from "../../src/layers/AudioSink.ts"
import { Database } from "../../src/layers/Database.ts"
import { Health } from "../../src/layers/Health.ts"
import { ApiRoutes } from "../../src/adapters/http/routes.ts"
import { serveHttp } from "../../src/layers/HttpServer.ts"
import { Metrics } from "../../src/layers/Metrics.ts"
import { StateStore } from "../../src/layers/StateStore.ts"
import { TracingLive } from "../../src/layers/Tracing.ts"
import { SharedServices } from "../../src/main.ts"
import { baseUrl, testConfig } from "../support/http.ts"
import { otlpReceiver, type ReceivedSpan } from "../support/otlp.ts"
import { freshDatabase } from "../support/postgres.ts"

const waitFor = (spans: Array<ReceivedSpan>, found: (all: ReadonlyArray<ReceivedSpan>) => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100 && !found(spans); i++) yield* Effect.sleep("100 millis")
    return found(spans)
  })

it.live("exports HTTP request and SQL spans over OTLP/HTTP and continues an incoming traceparent", () =>
  Effect.gen(function*() {
    const receiver = yield* otlpReceiver
    const databaseUrl = yield* freshDatabase
    const config = testConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, DATABASE_URL: databaseUrl })
    const stack = serveHttp(ApiRoutes, 0, "127.0.0.1").pipe(
      Layer.provideMerge(SharedServices),
      Layer.provideMerge(Layer.mergeAll(Database.layer, StateStore.layerMemory, AudioSink.layer)),
      Layer.provideMerge(Layer.mergeAll(Health.layer, Metrics.layer)),
      Layer.provideMerge(TracingLive),
      Layer.provideMerge(config)
    )
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
    yield* Effect.gen(function*() {
      const url = yield* baseUrl
      const response = yield* Effect.promise(() => fetch(`${url}/ready`, { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } }))
      assert.strictEqual(response.status, 200)
      const sql = yield* SqlClient.SqlClient
      yield* sql`SELECT 42 AS answer`.pipe(Effect.withSpan("test.query"))
    }).pipe(Effect.provide(stack), Effect.scoped)

    const gotAll = yield* waitFor(receiver.spans, (all) =>
      all.some((s) => s.traceId === traceId) && all.some((s) => String(s.attributes["db.query.text"]).includes("42")))
    assert.isTrue(
      gotAll,
      `spans received: ${
        receiver.spans.map((s) => s.name).join(", ")
      }`
    )

    const server = receiver.spans.find((s) => s.traceId === traceId && s.parentSpanId === "00f067aa0ba902b7")
    assert.isDefined(server, "the HTTP server span continues the caller's trace")
    assert.strictEqual(server?.attributes["http.request.method"], "GET")
    const query = receiver.spans.find((s) => String(s.attributes["db.query.text"]).includes("SELECT 42"))
    assert.strictEqual(query?.attributes["db.system.name"], "postgresql", "the SQL statement has its own span")
    assert.strictEqual(query?.attributes["db.namespace"], new URL(databaseUrl).pathname.slice(1))
    assert.strictEqual(query?.attributes["server.address"], "127.0.0.1")
    // /ready runs the Postgres probe inside the request, so its SQL span is a child of the request span.
    const probe = receiver.spans.find((s) => s.parentSpanId === server?.spanId && s.attributes["db.query.text"] === "SELECT 1")
    assert.isDefined(probe)
  }), 30_000)
