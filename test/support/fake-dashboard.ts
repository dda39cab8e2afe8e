import type * as http from "node:http"
import { FakeHttpServer, readBody } from "./fake-server.ts"

export interface FakeDashboardOptions {
  readonly apiKey: string
  /** Named in every registration answer (absent: the bridge keeps its own period). */
  readonly heartbeatIntervalMs?: number
}

/** A call the fake accepted or refused, with its decoded JSON body. */
export interface Received {
  readonly bridgeId: string
  readonly body: unknown
  /** Epoch ms. */
  readonly at: number
}

const BRIDGES = "/api/v1/bridges"

const send = (res: http.ServerResponse, status: number, body?: unknown) => {
  if (body === undefined) {
    res.writeHead(status).end()
    return
  }
  const text = JSON.stringify(body)
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text)
}

const NOT_JSON = Symbol("not JSON")

/** The body's JSON (undefined when empty), or NOT_JSON. */
const parseJson = (text: string): unknown => {
  try {
    return text === "" ? undefined : JSON.parse(text)
  } catch {
    return NOT_JSON
  }
}

const bridgeIdOf = (body: unknown): string | undefined => {
  if (typeof body !== "object" || body === null || !("bridgeId" in body)) return undefined
  return typeof body.bridgeId === "string" && body.bridgeId !== "" ? body.bridgeId : undefined
}

/**
 * A fake Dashboard: a real node:http server speaking the bridge registry contract (README
 * "Dashboard registration"): `POST /api/v1/bridges` (201, or 200 for a known bridge),
 * `PUT /api/v1/bridges/{id}/heartbeat` (204; 404 for an unknown bridge), `DELETE /api/v1/bridges/{id}`
 * (204; 404 unknown), each checked for `Authorization: Bearer <apiKey>` (401 otherwise). It records
 * every registration, heartbeat and deregistration with its body, the refused ones in `rejected`.
 *
 * Fault injection: `latencyMs` (each answer is delayed), `failNext(n, status)`, `down()` (listener and
 * every open connection closed: ECONNREFUSED), `up()` (the same port again), `forget(bridgeId)`.
 */
export class FakeDashboard extends FakeHttpServer {
  readonly apiKey: string
  /** Milliseconds every call waits before it is answered. */
  heartbeatIntervalMs: number | undefined
  readonly registrations: Array<Received> = []
  readonly heartbeats: Array<Received> = []
  readonly deregistrations: Array<Received> = []
  /** Calls refused: bad key, injected failure, unknown bridge, bad body. */
  readonly rejected: Array<{ readonly method: string; readonly path: string; readonly status: number }> = []
  /** Bridges registered now, with their last registration body. */
  readonly bridges = new Map<string, unknown>()

  constructor(options: FakeDashboardOptions) {
    super()
    this.apiKey = options.apiKey
    this.heartbeatIntervalMs = options.heartbeatIntervalMs
  }

  /** Drops a bridge as a restarted Dashboard would: its next heartbeat is answered 404. */
  forget(bridgeId: string): void {
    this.bridges.delete(bridgeId)
  }

  protected async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const text = await readBody(req)
    const failed = await this.injected()
    const method = req.method ?? "GET"
    const path = new URL(req.url ?? "/", "http://fake").pathname
    const refuse = (status: number, error: string) => {
      this.rejected.push({ method, path, status })
      send(res, status, { error })
    }
    if (failed !== undefined) return refuse(failed, "injected failure")
    if (req.headers.authorization !== `Bearer ${this.apiKey}`) return refuse(401, "invalid API key")
    const body = parseJson(text)
    if (body === NOT_JSON) return refuse(400, "body is not JSON")
    const at = Date.now()
    if (path === BRIDGES && method === "POST") {
      const bridgeId = bridgeIdOf(body)
      if (bridgeId === undefined) return refuse(400, "bridgeId missing")
      const known = this.bridges.has(bridgeId)
      this.bridges.set(bridgeId, body)
      this.registrations.push({ bridgeId, body, at })
      return send(res, known ? 200 : 201, this.heartbeatIntervalMs === undefined ? { bridgeId } : { bridgeId, heartbeatIntervalMs: this.heartbeatIntervalMs })
    }
    const match = /^\/api\/v1\/bridges\/([^/]+)(\/heartbeat)?$/.exec(path)
    const bridgeId = match?.[1] === undefined ? undefined : decodeURIComponent(match[1])
    if (bridgeId === undefined) return refuse(404, "no such route")
    if (match?.[2] !== undefined && method === "PUT") {
      if (!this.bridges.has(bridgeId)) return refuse(404, "unknown bridge")
      this.heartbeats.push({ bridgeId, body, at })
      return send(res, 204)
    }
    if (match?.[2] === undefined && method === "DELETE") {
      if (!this.bridges.delete(bridgeId)) return refuse(404, "unknown bridge")
      this.deregistrations.push({ bridgeId, body, at })
      return send(res, 204)
    }
    return refuse(405, "method not allowed")
  }
}
