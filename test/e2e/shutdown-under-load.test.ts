import * as PgClient from "@effect/sql-pg/PgClient"
import { Effect, Exit, Redacted, Scope } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import { Agent, request as httpRequest } from "node:http"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { type Api, openPcmChannel } from "../../bench/datachannel-client.ts"
import { freshDatabase } from "../support/postgres.ts"
import { type ServiceProcess, startService, waitForOk, NO_SESSION_CAPS } from "../support/process.ts"
import { asRecord, authEnv, call, signedInClient } from "../support/service-client.ts"

const cleanup: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

const opus = {
  kind: "audio",
  rtpParameters: { codecs: [{ mimeType: "audio/opus", payloadType: 100, clockRate: 48000, channels: 2 }], encodings: [{ ssrc: 1111 }] }
}

interface Created {
  readonly id: string
  readonly sentAt: number
}

/** One request on a keep-alive agent with a single socket: the way a busy client reuses its connection. */
const keepAliveRequest = (agent: Agent, url: string, headers: Record<string, string>, body: string) =>
  new Promise<{ status: number; connection: string | undefined; body: string }>((resolve) => {
    const req = httpRequest(url, { method: "POST", agent, headers: { ...headers, "content-length": String(Buffer.byteLength(body)) } }, (res) => {
      let text = ""
      res.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, connection: res.headers["connection"], body: text }))
      res.on("error", () => resolve({ status: 0, connection: undefined, body: "" }))
    })
    req.on("error", () => resolve({ status: 0, connection: undefined, body: "" }))
    req.end(body)
  })

describe("SIGTERM under load", () => {
  it("20 clients and a keep-alive client: no session created after SIGTERM, every session ended with a reason, exit 0 in time", async () => {
    const scope = Effect.runSync(Scope.make())
    cleanup.push(() => Effect.runPromise(Scope.close(scope, Exit.void)))
    const databaseUrl = await Effect.runPromise(Scope.provide(freshDatabase, scope))
    const minPort = 43_000 + Math.floor(Math.random() * 200) * 50
    const deadlineMs = 15_000
    const drainMs = 2_000
    const service: ServiceProcess = await startService({
      ...authEnv,
      DATA_DIR: mkdtempSync(join(tmpdir(), "auralink-data-")),
      DATABASE_URL: databaseUrl,
      SHUTDOWN_TIMEOUT_MS: String(deadlineMs),
      // The clients keep their sessions: the drain waits this long for them, then ends them.
      DRAIN_TIMEOUT_MS: String(drainMs),
      MEDIASOUP_WORKERS: "1",
      MEDIASOUP_LISTEN_IP: "127.0.0.1",
      RTC_MIN_PORT: String(minPort),
      RTC_MAX_PORT: String(minPort + 49),
      RATE_LIMIT_AUTH_PER_MINUTE: "1000000",
      RATE_LIMIT_SESSION_PER_MINUTE: "1000000",
      RATE_LIMIT_DEFAULT_PER_MINUTE: "1000000",
      ...NO_SESSION_CAPS
    })
    cleanup.push(() => void service.child.kill("SIGKILL"))
    await waitForOk(`${service.httpUrl}/ready`, 30_000)
    const url = service.httpUrl

    const clients = await Promise.all(Array.from({ length: 21 }, () => signedInClient(url)))
    const created: Array<Created> = []
    const afterSigterm: Array<{ sentAt: number; status: number; connection: string | null | undefined }> = []
    let sigtermAt = Number.POSITIVE_INFINITY
    let exited = false

    // 20 clients: a session, a plain transport, and on every other one a producer (active); else it stays pending.
    const mediaClient = async (client: Awaited<ReturnType<typeof signedInClient>>) => {
      for (let n = 0; !exited; n++) {
        const sentAt = Date.now()
        const session = await client.post("/api/session", null, 5_000)
        if (sentAt > sigtermAt) afterSigterm.push({ sentAt, status: session.status, connection: session.headers.get("connection") })
        if (session.status !== 201) {
          await new Promise((r) => setTimeout(r, 50))
          continue
        }
        const id = String(session.json["id"])
        created.push({ id, sentAt })
        const transport = await client.post(`/api/webrtc/${id}/plain-transports`, { comedia: true }, 5_000)
        if (transport.status === 201 && n % 2 === 0) {
          await client.post(`/api/webrtc/${id}/plain-transports/${String(transport.json["id"])}/produce`, opus, 5_000)
        }
      }
    }
    // The keep-alive client: sessions in a tight loop over one reused connection.
    const keepAlive = clients[20]
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    cleanup.push(() => agent.destroy())
    let keepAliveAfter = 0
    const keepAliveLoop = async () => {
      while (!exited) {
        const sentAt = Date.now()
        const res = await keepAliveRequest(agent, `${url}/api/session`, keepAlive?.headers ?? {}, "null")
        if (sentAt > sigtermAt) {
          keepAliveAfter++
          afterSigterm.push({ sentAt, status: res.status, connection: res.connection })
        }
        if (res.status === 201) created.push({ id: String(JSON.parse(res.body).id), sentAt })
        else await new Promise((r) => setTimeout(r, 20))
      }
    }
    // One SSE watcher of an active session.
    const watched = await clients[0]!.post("/api/session")
    const watchedId = String(watched.json["id"])
    created.push({ id: watchedId, sentAt: Date.now() })
    const sse = await fetch(`${url}/api/webrtc/${watchedId}/events`, { headers: clients[0]!.headers })
    expect(sse.status).toBe(200)
    const sseText = sse.text().catch(() => "")

    // One WebRTC peer (werift) streaming PCM, with the session's events data channel open.
    const api: Api = async (method, path, body, status) => {
      const reply = await call(`${url}${path}`, { method, headers: clients[0]!.headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
      if (reply.status !== status) throw new Error(`${method} ${path} answered ${reply.status}`)
      return reply.json
    }
    const peerSession = await clients[0]!.post("/api/session")
    const peerSessionId = String(peerSession.json["id"])
    created.push({ id: peerSessionId, sentAt: Date.now() })
    const pcm = await openPcmChannel(api, peerSessionId)
    cleanup.push(() => pcm.close())
    const eventsChannel = asRecord(await api("POST", `/api/webrtc/${peerSessionId}/transports/${pcm.transportId}/events-channel`, undefined, 201))
    const streamId = Number(asRecord(eventsChannel["sctpStreamParameters"])["streamId"])
    const channelMessages: Array<string> = []
    pcm.pc.createDataChannel("auralink-events", { negotiated: true, id: streamId, protocol: "json" })
      .onMessage.subscribe((message) => void channelMessages.push(String(message)))

    const load = [...clients.slice(0, 20).map(mediaClient), keepAliveLoop()]
    await new Promise((r) => setTimeout(r, 2_500))
    const before = created.length
    sigtermAt = Date.now()
    service.child.kill("SIGTERM")
    const { code } = await service.exited
    const exitMs = Date.now() - sigtermAt
    exited = true
    await Promise.all(load)

    // Requests sent more than 100 ms after the signal (the process needs a moment to see it).
    const late = afterSigterm.filter((r) => r.sentAt > sigtermAt + 100)
    const lateCreated = created.filter((c) => c.sentAt > sigtermAt + 100)
    const rows = await Effect.runPromise(
      Effect.gen(function*() {
        const sql = yield* PgClient.makeClient({ url: Redacted.make(databaseUrl) })
        return yield* sql<{ id: string; state: string; error: string | null; reason: string | null }>`
          SELECT s.id, s.state, s.error,
            (SELECT e.reason FROM session_events e WHERE e.session_id = s.id ORDER BY e.id DESC LIMIT 1) AS reason
          FROM sessions s`
      }).pipe(Effect.scoped, Effect.provide(Reactivity.layer), Effect.orDie)
    )
    const open = rows.filter((r) => r.state === "pending" || r.state === "active")
    const figures = {
      sessionsBefore: before,
      sessionsInDb: rows.length,
      afterSigtermRequests: afterSigterm.length,
      afterSigtermStatuses: [...new Set(afterSigterm.map((r) => r.status))].sort(),
      keepAliveRequestsAfterSigterm: keepAliveAfter,
      lateCreated: lateCreated.length,
      endedByShutdown: rows.filter((r) => r.error === "shutdown").length,
      channelMessages,
      exitMs
    }
    console.log(`shutdown under load: ${JSON.stringify(figures)}`)
    expect(code).toBe(0)
    expect(exitMs).toBeLessThan(deadlineMs)
    expect(before).toBeGreaterThan(20)
    expect(lateCreated).toEqual([])
    expect(late.filter((r) => r.status === 201)).toEqual([])
    // Refused with 503 and Connection: close, or the connection was already closed (status 0).
    expect(late.every((r) => r.status === 0 || (r.status === 503 && r.connection === "close"))).toBe(true)
    expect(open).toEqual([])
    expect(rows.every((r) => r.reason !== null && r.reason.length > 0)).toBe(true)
    expect(rows.filter((r) => r.error === "shutdown").length).toBeGreaterThan(0)
    expect(await sseText).toContain("event: going_away")
    expect(channelMessages).toContain(JSON.stringify({ type: "going_away", reason: "shutdown" }))
    expect(service.output()).toContain("shutdown: sessions ended")
  }, 90_000)
})
