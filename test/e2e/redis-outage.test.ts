import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as grpc from "@grpc/grpc-js"
import { afterEach, describe, expect, it } from "vitest"
import { percentile } from "../../bench/support.ts"
import { loadProto } from "../../src/layers/grpc/proto.ts"
import { SESSION_SERVICE } from "../../src/adapters/grpc/sessions.ts"
import { JWT_SECRET, PROVISIONING_KEY } from "../support/auth.ts"
import { type PrivateRedis, privateRedis } from "../support/private-redis.ts"
import { type ServiceProcess, startService, waitForOk, NO_SESSION_CAPS } from "../support/process.ts"

const cleanup: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

interface Sample {
  /** When the request was sent. */
  readonly at: number
  readonly ms: number
  readonly status: number
  readonly authenticated: boolean
  readonly retryAfter: string | null
}

const json = async (response: Response): Promise<Record<string, unknown>> => {
  const body: unknown = await response.json()
  return typeof body === "object" && body !== null ? Object.fromEntries(Object.entries(body)) : {}
}

/** GetSession over the process's gRPC listener: "OK" or the status code. */
const grpcGetSession = (service: ServiceProcess, token: string, sessionId: string): Promise<grpc.status | "OK"> => {
  const port = Number(/gRPC listening on \S+:(\d+)/.exec(service.output())?.[1])
  const definition = loadProto("session.proto")[SESSION_SERVICE]
  const method = definition !== undefined && !("format" in definition) ? definition["GetSession"] : undefined
  if (method === undefined) throw new Error("no GetSession in session.proto")
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure())
  const metadata = new grpc.Metadata()
  metadata.set("authorization", `Bearer ${token}`)
  return new Promise((resolve) =>
    client.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      { sessionId },
      metadata,
      { deadline: Date.now() + 5_000 },
      (error) => {
        client.close()
        resolve(error === null ? "OK" : error.code)
      }
    )
  )
}

const setUp = async (): Promise<{ service: ServiceProcess; redis: PrivateRedis }> => {
  const rtcMin = 45_000 + Math.floor(Math.random() * 500) * 20
  const redis = await privateRedis()
  cleanup.push(() => redis.stop())
  const service = await startService({
    DATA_DIR: mkdtempSync(join(tmpdir(), "auralink-data-")),
    DATABASE_URL: "postgres://postgres@127.0.0.1:5432/test",
    REDIS_URL: redis.url,
    JWT_SECRET,
    AUTH_PROVISIONING_KEY: PROVISIONING_KEY,
    RATE_LIMIT_AUTH_PER_MINUTE: "1000000",
    RATE_LIMIT_SESSION_PER_MINUTE: "1000000",
    RATE_LIMIT_DEFAULT_PER_MINUTE: "1000000",
    ...NO_SESSION_CAPS,
    MEDIASOUP_WORKERS: "1",
    MEDIASOUP_LISTEN_IP: "127.0.0.1",
    RTC_MIN_PORT: String(rtcMin),
    RTC_MAX_PORT: String(rtcMin + 19)
  })
  cleanup.push(() => void service.child.kill("SIGKILL"))
  await waitForOk(`${service.httpUrl}/ready`, 30_000)
  return { service, redis }
}

/** 8 clients through an outage of Redis: killed and started again, or paused (SIGSTOP) and resumed. */
const outageUnderLoad = async (fault: "kill" | "pause") => {
  const { service, redis } = await setUp()
  const url = service.httpUrl
  const registered = await fetch(`${url}/api/auth/devices`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-provisioning-key": PROVISIONING_KEY },
    body: JSON.stringify({ userId: `redis-outage-${crypto.randomUUID()}` })
  })
  expect(registered.status).toBe(201)
  const device = await json(registered)
  const credentials = JSON.stringify({ deviceId: device["deviceId"], deviceSecret: device["deviceSecret"] })
  const login = await fetch(`${url}/api/auth/token`, { method: "POST", headers: { "content-type": "application/json" }, body: credentials })
  const token = String((await json(login))["accessToken"])
  const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" }
  const created = await fetch(`${url}/api/session`, { method: "POST", headers: auth, body: "null" })
  expect(created.status).toBe(201)
  const sessionId = String((await json(created))["id"])
  expect(await grpcGetSession(service, token, sessionId)).toBe("OK")
  // An active session (a plain transport and an Opus producer) followed over SSE across the outage.
  const watched = String((await json(await fetch(`${url}/api/session`, { method: "POST", headers: auth, body: "null" })))["id"])
  const plain = await json(
    await fetch(`${url}/api/webrtc/${watched}/plain-transports`, { method: "POST", headers: auth, body: JSON.stringify({ comedia: true }) })
  )
  const opus = {
    kind: "audio",
    rtpParameters: { codecs: [{ mimeType: "audio/opus", payloadType: 100, clockRate: 48000, channels: 2 }], encodings: [{ ssrc: 1111 }] }
  }
  const produced = await fetch(`${url}/api/webrtc/${watched}/plain-transports/${String(plain["id"])}/produce`, {
    method: "POST",
    headers: auth,
    body: JSON.stringify(opus)
  })
  expect(produced.status).toBe(201)
  const sse = await fetch(`${url}/api/webrtc/${watched}/events`, { headers: auth })
  expect(sse.status).toBe(200)
  const sseText = sse.text()

  const samples: Array<Sample> = []
  let running = true
  let unavailableBody: Record<string, unknown> | undefined
  const timed = async (authenticated: boolean, run: () => Promise<Response>) => {
    const at = Date.now()
    const began = performance.now()
    const response = await run()
    const text = await response.text()
    if (response.status === 503 && unavailableBody === undefined) unavailableBody = JSON.parse(text)
    samples.push({ at, ms: performance.now() - began, status: response.status, authenticated, retryAfter: response.headers.get("retry-after") })
  }
  const client = async (index: number) => {
    for (let n = 0; running; n++) {
      if (index === 0 && n % 4 === 0) {
        // Token issuance reads no Redis state but the rate limit (fails open): it keeps working.
        await timed(false, () => fetch(`${url}/api/auth/token`, { method: "POST", headers: { "content-type": "application/json" }, body: credentials }))
      } else if (n % 10 === 5) {
        await timed(true, () => fetch(`${url}/api/session`, { method: "POST", headers: auth, body: "null" }))
      } else {
        await timed(true, () => fetch(n % 2 === 0 ? `${url}/api/session/${sessionId}` : `${url}/api/sessions?limit=5`, { headers: auth }))
      }
    }
  }
  const clients = Array.from({ length: 8 }, (_, i) => client(i))
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

  await sleep(1_000)
  if (fault === "kill") await redis.kill()
  else {
    redis.pause()
    // A signal takes effect a moment later: replies already on their way still arrive.
    await sleep(100)
  }
  const killedAt = Date.now()
  await sleep(3_000)
  const ready = await fetch(`${url}/ready`)
  const readyBody = await ready.text()
  const grpcDuringOutage = await grpcGetSession(service, token, sessionId)
  await sleep(500)
  const outageEnd = Date.now()
  if (fault === "kill") await redis.start()
  else redis.resume()
  const restartedAt = Date.now()
  await sleep(6_000)
  // The subscription came back with Redis: stopping the session now reaches the SSE stream, which ends.
  const stopped = await fetch(`${url}/api/session/${watched}/stop`, { method: "POST", headers: auth })
  expect(stopped.status).toBe(200)
  const sseBody = await Promise.race([sseText, sleep(5_000).then(() => "(SSE stream did not end)")])
  expect(sseBody).toContain(`data: {"state":"completed"}`)
  running = false
  await Promise.all(clients)

  // Sent and answered while Redis was down: a request still waiting when it comes back (the breaker's
  // probe, up to REDIS_COMMAND_TIMEOUT_MS) is rightly answered from Redis.
  const outage = samples.filter((s) => s.at > killedAt && s.at + s.ms <= outageEnd)
  const outageAuthed = outage.filter((s) => s.authenticated)
  const afterRestart = samples.filter((s) => s.authenticated && s.at > restartedAt)
  const lastFailure = Math.max(restartedAt, ...afterRestart.filter((s) => s.status !== 200 && s.status !== 201).map((s) => s.at))
  const figures = {
    requests: samples.length,
    outageRequests: outage.length,
    outageStatuses: [...new Set(outage.map((s) => s.status))].sort(),
    outageAuthedP99Ms: Math.round(percentile(outageAuthed.map((s) => s.ms), 99)),
    outageAuthedMaxMs: Math.round(Math.max(...outageAuthed.map((s) => s.ms))),
    recoveryMs: lastFailure - restartedAt
  }
  console.log(`redis outage (${fault}): ${JSON.stringify(figures)}`)

  expect(samples.filter((s) => s.status >= 500 && s.status !== 503)).toEqual([])
  expect(ready.status).toBe(503)
  expect(grpcDuringOutage).toBe(grpc.status.UNAVAILABLE)
  expect(readyBody).toContain("redis")
  expect(outageAuthed.length).toBeGreaterThan(50)
  // The deny-list fails closed: 503 with Retry-After, answered at once.
  expect(outageAuthed.filter((s) => s.status !== 503 || s.retryAfter === null).map((s) => ({ ...s, at: s.at - killedAt }))).toEqual([])
  expect(figures.outageAuthedP99Ms).toBeLessThan(500)
  expect(unavailableBody).toEqual({
    type: "about:blank",
    title: "Service Unavailable",
    status: 503,
    detail: "The token deny-list is unavailable; retry shortly",
    retryAfterSeconds: 2
  })
  // The rate limit fails open: token issuance goes on.
  expect(outage.filter((s) => !s.authenticated).every((s) => s.status === 200)).toBe(true)
  expect(figures.recoveryMs).toBeLessThanOrEqual(5_000)
  expect(afterRestart.filter((s) => s.at > restartedAt + 5_000).length).toBeGreaterThan(0)
  expect(afterRestart.filter((s) => s.at > restartedAt + 5_000).every((s) => s.status === 200 || s.status === 201)).toBe(true)
}

describe("Redis outage under load", () => {
  it("8 clients while a private Redis is killed and restarted: no 500, fast 503s, recovery within 5 s", () => outageUnderLoad("kill"), 60_000)

  // A hung Redis: each command waits REDIS_COMMAND_TIMEOUT_MS until the breaker opens, then fails at once.
  it("8 clients while a private Redis hangs (SIGSTOP) and resumes: no 500, fast 503s, recovery within 5 s", () => outageUnderLoad("pause"), 60_000)
})
