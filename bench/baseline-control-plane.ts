// The baseline for control-plane: a bare node:http handler running the service's session start and
// stop statements on a pool of the same driver (@effect/sql-pg) and size; no auth, rate limit,
// schema validation, cache, events, metrics or logging.
import * as PgClient from "@effect/sql-pg/PgClient"
import { Duration, Effect, Redacted, Scope } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import { createServer, type ServerResponse } from "node:http"
import { completeSession, insertSession } from "./control-plane-sql.ts"

const env = (name: string): string => {
  const value = process.env[name]
  if (value === undefined) throw new Error(`${name} is not set`)
  return value
}

const scope = Scope.makeUnsafe()
const sql = await Effect.runPromise(
  PgClient.make({
    url: Redacted.make(env("DATABASE_URL")),
    minConnections: Number(process.env["PGPOOL_MIN_INGRESS"] ?? 5),
    maxConnections: Number(process.env["PGPOOL_MAX_INGRESS"] ?? 20),
    connectTimeout: Duration.millis(2000),
    idleTimeout: Duration.millis(10_000)
  }).pipe(Scope.provide(scope), Effect.provide(Reactivity.layer))
)

const send = (response: ServerResponse, status: number, value: unknown) => {
  const body = JSON.stringify(value)
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
  response.end(body)
}

const STOP = /^\/api\/session\/([0-9a-f-]{36})\/stop$/
const ACTOR = "user:baseline/device:baseline"

type Reply = Effect.Effect<{ readonly status: number; readonly value: unknown }, unknown>

const handle = (method: string | undefined, url: string, body: string): Reply => {
  const stop = STOP.exec(url)
  if (method === "GET" && url === "/health") return Effect.succeed({ status: 200, value: { status: "healthy" } })
  if (method === "POST" && url === "/api/session") {
    JSON.parse(body === "" ? "null" : body) // the service decodes the (empty) config patch
    return Effect.map(insertSession(sql, "baseline", "baseline", ACTOR), (rows) => ({ status: 201, value: rows[0] }))
  }
  if (method === "POST" && stop?.[1] !== undefined) {
    return Effect.map(
      completeSession(sql, stop[1], ACTOR),
      (rows) => rows[0] === undefined ? { status: 409, value: { title: "conflict" } } : { status: 200, value: rows[0] }
    )
  }
  return Effect.succeed({ status: 404, value: { title: "not found" } })
}

createServer((request, response) => {
  const chunks: Array<Buffer> = []
  request.on("data", (chunk: Buffer) => chunks.push(chunk))
  request.on("end", () => {
    Effect.runPromise(handle(request.method, request.url ?? "", Buffer.concat(chunks).toString("utf8"))).then(
      ({ status, value }) => send(response, status, value),
      (error: unknown) => send(response, 500, { detail: String(error) })
    )
  })
}).listen(Number(env("PORT")), "127.0.0.1")
