import type * as http from "node:http"
import { FakeHttpServer, readBody } from "./fake-server.ts"

/** An identity as the Communication Service stores it (the wire contract's record). */
export interface FakeIdentity {
  readonly auraId: string
  readonly displayName: string
  readonly email: string | null
  readonly phone: string | null
  readonly verified: boolean
  readonly privacy: "public" | "contacts" | "private"
}

export type FakeOperation = "get" | "batch" | "lookup" | "health"

/** Most ids one batch call may name (as the real service would bound it). */
const BATCH_LIMIT = 1000

const isStringArray = (value: unknown): value is ReadonlyArray<string> => Array.isArray(value) && value.every((v) => typeof v === "string")

/**
 * A fake Communication Service: a real node:http server speaking the AuraID contract (README "AuraID
 * resolution"): `GET /api/v1/auraid/{id}`, `POST /api/v1/auraid/batch`, `GET /api/v1/auraid?email=|phone=`,
 * `GET /api/v1/health`, each checking `Authorization: Bearer <apiKey>` (401 otherwise; health too).
 *
 * Fault injection: `latencyMs` (each answer is delayed), `failNext(n, status)`, `down()` (listener and every open
 * connection closed: ECONNREFUSED) and `up()` (the same port again). `calls` counts requests by operation.
 */
export class FakeCommunicationService extends FakeHttpServer {
  readonly apiKey: string
  readonly calls = new Map<FakeOperation, number>()
  /** Ids named by batch calls, in order (to check deduplication). */
  readonly batchedIds: Array<string> = []
  private readonly identities = new Map<string, FakeIdentity>()

  constructor(options: { readonly apiKey: string }) {
    super()
    this.apiKey = options.apiKey
  }

  /** Adds or replaces identities. */
  put(...identities: ReadonlyArray<FakeIdentity>): void {
    for (const identity of identities) this.identities.set(identity.auraId, identity)
  }

  remove(auraId: string): void {
    this.identities.delete(auraId)
  }

  /** `aura:user-<i>` for i in [0, count): display name `User <i>`, every third unverified. */
  seed(count: number): void {
    for (let i = 0; i < count; i++) {
      this.put({
        auraId: `aura:user-${i}`,
        displayName: `User ${i}`,
        email: `user-${i}@example.com`,
        phone: `+1555${String(i).padStart(7, "0")}`,
        verified: i % 3 !== 0,
        privacy: "contacts"
      })
    }
  }

  callCount(operation: FakeOperation): number {
    return this.calls.get(operation) ?? 0
  }

  resetCounters(): void {
    this.calls.clear()
    this.batchedIds.length = 0
  }

  private operationOf(method: string, path: string): FakeOperation | undefined {
    if (method === "GET" && path === "/api/v1/health") return "health"
    if (method === "POST" && path === "/api/v1/auraid/batch") return "batch"
    if (method === "GET" && path === "/api/v1/auraid") return "lookup"
    if (method === "GET" && path.startsWith("/api/v1/auraid/")) return "get"
    return undefined
  }

  protected async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const send = (status: number, body?: unknown) => {
      res.writeHead(status, body === undefined ? {} : { "content-type": "application/json" })
      res.end(body === undefined ? undefined : JSON.stringify(body))
    }
    try {
      const url = new URL(req.url ?? "/", "http://fake")
      const operation = this.operationOf(req.method ?? "GET", url.pathname)
      const body = await readBody(req)
      if (operation === undefined) return send(404, { error: "no such route" })
      this.calls.set(operation, this.callCount(operation) + 1)
      const failed = await this.injected()
      if (failed !== undefined) return send(failed, { error: "injected failure" })
      if (req.headers.authorization !== `Bearer ${this.apiKey}`) return send(401, { error: "unauthorized" })
      switch (operation) {
        case "health":
          return send(200, { status: "ok" })
        case "get": {
          const found = this.identities.get(decodeURIComponent(url.pathname.slice("/api/v1/auraid/".length)))
          return found === undefined ? send(404, { error: "not found" }) : send(200, found)
        }
        case "lookup": {
          const email = url.searchParams.get("email")
          const phone = url.searchParams.get("phone")
          if ((email === null) === (phone === null)) return send(400, { error: "exactly one of email or phone" })
          const found = [...this.identities.values()].find((i) => (email !== null ? i.email === email : i.phone === phone))
          return found === undefined ? send(404, { error: "not found" }) : send(200, found)
        }
        case "batch": {
          const parsed: unknown = JSON.parse(body)
          const ids: unknown = typeof parsed === "object" && parsed !== null && "ids" in parsed ? parsed.ids : undefined
          if (!isStringArray(ids) || ids.length > BATCH_LIMIT) return send(400, { error: `ids: up to ${BATCH_LIMIT} strings` })
          this.batchedIds.push(...ids)
          const results = ids.flatMap((id) => this.identities.get(id) ?? [])
          return send(200, { results, missing: ids.filter((id) => !this.identities.has(id)) })
        }
      }
    } catch {
      send(400, { error: "bad request" })
    }
  }
}
