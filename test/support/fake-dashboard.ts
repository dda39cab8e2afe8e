import * as http from "node:http"
import { setTimeout as sleep } from "node:timers/promises"

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

const readBody = (req: http.IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

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
export class FakeDashboard {
  readonly apiKey: string
  /** Milliseconds every call waits before it is answered. */
  latencyMs = 0
  heartbeatIntervalMs: number | undefined
  readonly registrations: Array<Received> = []
  readonly heartbeats: Array<Received> = []
  readonly deregistrations: Array<Received> = []
  /** Calls refused: bad key, injected failure, unknown bridge, bad body. */
  readonly rejected: Array<{ readonly method: string; readonly path: string; readonly status: number }> = []
  /** Bridges registered now, with their last registration body. */
  readonly bridges = new Map<string, unknown>()
  private readonly server: http.Server
  private failures = 0
  private failStatus = 503
  private port_ = 0
  private host = "127.0.0.1"
  private listening = false

  constructor(options: FakeDashboardOptions) {
    this.apiKey = options.apiKey
    this.heartbeatIntervalMs = options.heartbeatIntervalMs
    this.server = http.createServer((req, res) => void this.handle(req, res).catch(() => res.destroy()))
  }

  get port(): number {
    return this.port_
  }
  get url(): string {
    return `http://${this.host === "0.0.0.0" || this.host === "::" ? "127.0.0.1" : this.host}:${this.port_}`
  }

  /** Listens on `host:port` (0: a free port, then kept for `up()`). */
  async start(port = 0, host = "127.0.0.1"): Promise<void> {
    this.host = host
    await this.listen(port)
  }

  stop(): Promise<void> {
    return this.down()
  }

  /** Stops listening and cuts every open connection: clients get ECONNREFUSED (or a reset mid-call). */
  async down(): Promise<void> {
    if (!this.listening) return
    this.listening = false
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    this.server.closeAllConnections()
    await closed
    // A turn of the event loop for clients in this process to see their pooled connections closed.
    await sleep(10)
  }

  /** Listens again on the port `start` got. */
  up(): Promise<void> {
    return this.listen(this.port_)
  }

  /** The next `count` calls fail with this status (before authentication). */
  failNext(count: number, status = 503): void {
    this.failures = count
    this.failStatus = status
  }

  /** Drops a bridge as a restarted Dashboard would: its next heartbeat is answered 404. */
  forget(bridgeId: string): void {
    this.bridges.delete(bridgeId)
  }

  private async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject)
      this.server.listen(port, this.host, () => {
        this.server.off("error", reject)
        resolve()
      })
    })
    const address = this.server.address()
    if (address !== null && typeof address === "object") this.port_ = address.port
    this.listening = true
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const text = await readBody(req)
    if (this.latencyMs > 0) await sleep(this.latencyMs)
    const method = req.method ?? "GET"
    const path = new URL(req.url ?? "/", "http://fake").pathname
    const refuse = (status: number, error: string) => {
      this.rejected.push({ method, path, status })
      send(res, status, { error })
    }
    if (this.failures > 0) {
      this.failures -= 1
      return refuse(this.failStatus, "injected failure")
    }
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
