import { assert, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { Sessions } from "../../src/layers/SessionStore.ts"
import { activateSession } from "../../src/programs/sessions/activate.ts"
import { sweepOnce } from "../../src/programs/sessions/sweep.ts"
import { request, signIn, str } from "../support/auth.ts"
import { capturedLogs } from "../support/http.ts"
import { mediaServer, opusRtpParameters, startSession, user } from "../support/media.ts"

type Response = { status: number; json: Record<string, unknown>; text: string; headers: Headers }

const assertLimit = (res: Response, limit: string) => {
  assert.strictEqual(res.status, 429, res.text)
  assert.strictEqual(res.json["type"], "urn:auralink:problem:limit-reached")
  assert.strictEqual(res.json["limit"], limit)
  assert.include(str(res.json["detail"]), limit)
}

// One worker with 40 RTC ports: 100 transports of one user would take them all without the caps.
const Capped = mediaServer({
  MEDIASOUP_WORKERS: "1",
  RTC_MIN_PORT: "47310",
  RTC_MAX_PORT: "47349",
  MAX_TRANSPORTS_PER_SESSION: "4",
  MAX_PRODUCERS_PER_SESSION: "2",
  MAX_PENDING_SESSIONS_PER_DEVICE: "2",
  MAX_PENDING_SESSIONS_PER_USER: "3",
  MAX_OPEN_SESSIONS_PER_DEVICE: "3",
  MAX_OPEN_SESSIONS_PER_USER: "4"
})

layer(Capped, { timeout: 120_000 })("limits on what one client can take", (it) => {
  it.effect("one user trying to open 100 transports is capped (429 naming the limit) while another user's transport succeeds", () =>
    Effect.gen(function*() {
      const attacker = yield* signIn(user("attacker"))
      const victim = yield* signIn(user("victim"))
      const transport = (id: string, headers: Record<string, string>) => request("POST", `/api/webrtc/${id}/transports`, undefined, headers)

      // 100 at once on one session: exactly MAX_TRANSPORTS_PER_SESSION are made, the rest refused.
      const first = yield* startSession(attacker.headers)
      const burst = yield* Effect.all(Array.from({ length: 100 }, () => transport(first, attacker.headers)), { concurrency: "unbounded" })
      assert.strictEqual(burst.filter((r) => r.status === 201).length, 4)
      for (const r of burst.filter((r) => r.status !== 201)) assertLimit(r, "MAX_TRANSPORTS_PER_SESSION")

      // More sessions: the session caps stop it (pending per device, then per user on a second device).
      yield* startSession(attacker.headers)
      assertLimit(yield* request("POST", "/api/session", {}, attacker.headers), "MAX_PENDING_SESSIONS_PER_DEVICE")
      const second = yield* signIn(attacker.userId)
      const onSecond = yield* startSession(second.headers)
      assertLimit(yield* request("POST", "/api/session", {}, second.headers), "MAX_PENDING_SESSIONS_PER_USER")
      // Active sessions count against the open caps.
      yield* activateSession(first)
      yield* activateSession(onSecond)
      const third = yield* startSession(second.headers)
      assertLimit(yield* request("POST", "/api/session", {}, second.headers), "MAX_OPEN_SESSIONS_PER_USER")
      // Cancelling a pending session frees its place.
      const cancelled = yield* request("POST", `/api/session/${third}/stop`, undefined, second.headers)
      assert.strictEqual(cancelled.status, 200, cancelled.text)
      yield* startSession(second.headers)

      const media = yield* request("GET", "/status")
      assert.strictEqual(media.status, 200)
      const victimSession = yield* startSession(victim.headers)
      const ok = yield* transport(victimSession, victim.headers)
      assert.strictEqual(ok.status, 201, ok.text)
    }))

  it.effect("producers per session are capped; a refused produce creates nothing", () =>
    Effect.gen(function*() {
      const carol = yield* signIn(user("carol"))
      const id = yield* startSession(carol.headers)
      const plain = yield* request("POST", `/api/webrtc/${id}/plain-transports`, { comedia: true }, carol.headers)
      assert.strictEqual(plain.status, 201, plain.text)
      const produce = (ssrc: number) =>
        request(
          "POST",
          `/api/webrtc/${id}/plain-transports/${str(plain.json["id"])}/produce`,
          { kind: "audio", rtpParameters: opusRtpParameters(100, ssrc) },
          carol.headers
        )
      const results = yield* Effect.all([1, 2, 3, 4, 5].map((i) => produce(1000 + i)), { concurrency: "unbounded" })
      assert.strictEqual(results.filter((r) => r.status === 201).length, 2, results.map((r) => r.text).join("\n"))
      for (const r of results.filter((r) => r.status !== 201)) assertLimit(r, "MAX_PRODUCERS_PER_SESSION")
    }))

  it.effect("a pending session expires after PENDING_SESSION_TIMEOUT_SECONDS (60) without media; the owner may cancel it", () =>
    Effect.gen(function*() {
      const dora = yield* signIn(user("dora"))
      const id = yield* startSession(dora.headers)
      const got = yield* request("GET", `/api/session/${id}`, undefined, dora.headers)
      const ttl = Date.parse(str(got.json["expiresAt"])) - Date.parse(str(got.json["createdAt"]))
      assert.approximately(ttl, 60_000, 2_000)
      // Activity does not extend a pending session past its pending timeout.
      const patched = yield* request("PATCH", `/api/session/${id}/config`, { idleTimeoutSeconds: 3600 }, dora.headers)
      assert.isAtMost(Date.parse(str(patched.json["expiresAt"])) - Date.parse(str(got.json["createdAt"])), 61_000)
      // Media makes it active: the idle timeout applies from then on.
      const active = yield* activateSession(id)
      assert.isAbove(Date.parse(active.expiresAt) - Date.now(), 3_000_000)

      const other = yield* startSession(dora.headers)
      const stopped = yield* request("POST", `/api/session/${other}/stop`, undefined, dora.headers)
      assert.strictEqual(stopped.status, 200, stopped.text)
      assert.strictEqual(stopped.json["state"], "completed")
      const events = yield* Effect.orDie(Sessions.use((s) => s.events(other)))
      assert.deepStrictEqual(events.map((e) => [e.from, e.to, e.reason]), [[null, "pending", "start"], [
        "pending",
        "completed",
        "cancelled by client before media"
      ]])
      const again = yield* request("POST", `/api/session/${other}/stop`, undefined, dora.headers)
      assert.strictEqual(again.status, 409, again.text)

      // The sweeper moves a pending session past its deadline to expired, saying why.
      const idle = yield* startSession(dora.headers)
      const sql = yield* SqlClient
      yield* Effect.orDie(sql`UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = ${idle}`)
      assert.isAtLeast(yield* sweepOnce, 1)
      const swept = yield* Effect.orDie(Sessions.use((s) => s.events(idle)))
      assert.deepStrictEqual(swept.map((e) => [e.to, e.reason]).at(-1), ["expired", "idle timeout: no media before the pending timeout"])
    }))
})

const logs = capturedLogs()
// Four RTC ports for one worker, each WebRTC transport on its own port (the WebRtcServer off): a handful of transports exhaust them.
const Tiny = mediaServer({
  MEDIASOUP_WORKERS: "1",
  RTC_MIN_PORT: "47420",
  RTC_MAX_PORT: "47423",
  MAX_TRANSPORTS_PER_SESSION: "100",
  MEDIASOUP_WEBRTC_SERVER: "false"
}).pipe(Layer.provide(logs.layer))

layer(Tiny, { timeout: 60_000 })("RTC port exhaustion (port-range mode)", (it) => {
  it.effect("is a 503 with Retry-After and a counter, never a 500; start-up warned about the small range", () =>
    Effect.gen(function*() {
      assert.isTrue(logs.lines.some((l) => l["event"] === "rtc_port_range_small" && l["portsPerWorker"] === 4), "start-up warning")
      const erin = yield* signIn(user("erin"))
      const id = yield* startSession(erin.headers)
      const statuses: Array<number> = []
      let refused: Response | undefined
      for (let i = 0; i < 10 && refused === undefined; i++) {
        const res = yield* request("POST", `/api/webrtc/${id}/transports`, undefined, erin.headers)
        statuses.push(res.status)
        if (res.status !== 201) refused = res
      }
      assert.isDefined(refused, `statuses: ${statuses.join(",")}`)
      if (refused === undefined) return
      assert.strictEqual(refused.status, 503, refused.text)
      assert.strictEqual(refused.headers.get("retry-after"), "5")
      assert.match(String(refused.json["detail"]), /no free RTC port/i)
      assert.notInclude(refused.text, "_tag")
      const plain = yield* request("POST", `/api/webrtc/${id}/plain-transports`, { comedia: true }, erin.headers)
      assert.strictEqual(plain.status, 503, plain.text)
      assert.strictEqual(plain.headers.get("retry-after"), "5")
      const metrics = (yield* request("GET", "/metrics")).text
      assert.match(metrics, /^auralink_media_ports_exhausted_total [2-9]/m)
    }))
})

// The same four ports with the WebRtcServer on (RTC_PORT=0: it takes one of them for UDP and TCP).
const TinyWithServer = mediaServer({ MEDIASOUP_WORKERS: "1", RTC_MIN_PORT: "47424", RTC_MAX_PORT: "47427", MAX_TRANSPORTS_PER_SESSION: "100" })

layer(TinyWithServer, { timeout: 60_000 })("RTC port exhaustion (WebRtcServer)", (it) => {
  it.effect("WebRTC transports take no port of their own; plain transports exhaust the rest of the range with a 503", () =>
    Effect.gen(function*() {
      const frank = yield* signIn(user("frank"))
      const id = yield* startSession(frank.headers)
      for (let i = 0; i < 10; i++) {
        const res = yield* request("POST", `/api/webrtc/${id}/transports`, undefined, frank.headers)
        assert.strictEqual(res.status, 201, res.text)
      }
      const statuses: Array<number> = []
      for (let i = 0; i < 6; i++) statuses.push((yield* request("POST", `/api/webrtc/${id}/plain-transports`, { comedia: true }, frank.headers)).status)
      // The server holds one UDP port of the four: three plain transports, then 503s.
      assert.deepStrictEqual(statuses, [201, 201, 201, 503, 503, 503])
    }))
})
