import { assert, layer } from "@effect/vitest"
import { Effect, Fiber, Layer, Option, Stream } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { ApiRoutes } from "../../src/adapters/http/routes.ts"
import { serveHttp } from "../../src/layers/HttpServer.ts"
import { Sessions } from "../../src/layers/SessionStore.ts"
import { SessionId } from "../../src/schemas/ids.ts"
import { TokenSigner } from "../../src/layers/Tokens.ts"
import { activateSession } from "../../src/programs/sessions/activate.ts"
import { failSession } from "../../src/programs/sessions/fail.ts"
import { sweepOnce } from "../../src/programs/sessions/sweep.ts"
import { watchSession } from "../../src/programs/sessions/watch.ts"
import { bearer, JWT_SECRET, list, PROVISIONING_KEY, record, registerDevice, request, signIn, str } from "../support/auth.ts"
import { onFreshDatabase } from "../support/server.ts"
import { baseUrl, capturedLogs } from "../support/http.ts"
import { REDIS_URL } from "../support/redis.ts"

/** The `sessions` of a list response body, and their ids. */
const sessionsOf = (body: unknown): ReadonlyArray<unknown> => list(record(body)["sessions"])
const idsOf = (body: unknown): Array<string> => sessionsOf(body).map((s) => str(record(s)["id"]))

const CONTEXT_CAP = 3
const BODY_LIMIT = 64 * 1024

const logs = capturedLogs()
// SharedServices is built below the listener, as in main.ts, so the tests reach the very instances
// the handlers use (one store, one cache, one set of metrics).
const Server = onFreshDatabase(serveHttp(ApiRoutes, 0, "127.0.0.1"), {
  REDIS_URL,
  JWT_SECRET,
  AUTH_PROVISIONING_KEY: PROVISIONING_KEY,
  SESSION_CONTEXT_CAP: String(CONTEXT_CAP),
  SESSION_SWEEP_INTERVAL_MS: "3600000", // the tests call sweepOnce themselves
  HTTP_BODY_LIMIT_BYTES: String(BODY_LIMIT),
  RATE_LIMIT_AUTH_PER_MINUTE: "100000",
  RATE_LIMIT_SESSION_PER_MINUTE: "100000",
  RATE_LIMIT_DEFAULT_PER_MINUTE: "100000"
}).pipe(Layer.provide(logs.layer))

// ---- helpers ----

/** A user name unique to this run (the per-user rate-limit budget lives in the shared Redis). */
const user = (name: string) => `${name}-${crypto.randomUUID().slice(0, 8)}`

const start = (headers: Record<string, string>, config: unknown = {}) =>
  Effect.gen(function*() {
    const res = yield* request("POST", "/api/session", config, headers)
    assert.strictEqual(res.status, 201, res.text)
    return SessionId.make(str(res.json["id"]))
  })

/** The row and its events, to prove a refused request changed nothing. */
const snapshot = (id: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient
    const row = yield* sql<{ row: unknown }>`SELECT row_to_json(s) AS row FROM sessions s WHERE id = ${id}`
    const events = yield* sql<{ n: string }>`SELECT count(*)::text AS n FROM session_events WHERE session_id = ${id}`
    return { row: row[0]?.row, events: Number(events[0]?.n) }
  }).pipe(Effect.orDie)

const events = (id: SessionId) =>
  Effect.map(Effect.orDie(Sessions.use((s) => s.events(id))), (all) => all.map((e) => ({ from: e.from, to: e.to, actor: e.actor, reason: e.reason })))

/** Makes sessions due for expiry now. */
const backdate = (ids: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient
    yield* sql`UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id IN ${sql.in(ids)}`
  }).pipe(Effect.orDie)

const assertConflict = (res: { status: number; json: Record<string, unknown>; text: string }, from: string, to: string) => {
  assert.strictEqual(res.status, 409, res.text)
  assert.strictEqual(res.json["type"], "urn:auralink:problem:illegal-transition")
  assert.strictEqual(res.json["from"], from)
  assert.strictEqual(res.json["to"], to)
  assert.include(str(res.json["detail"]), from)
  assert.include(str(res.json["detail"]), to)
}

layer(Server, { timeout: 120_000 })("sessions over REST", (it) => {
  it.effect("full lifecycle: start (pending, defaults), activate, stop (completed), events in order", () =>
    Effect.gen(function*() {
      const alice = yield* signIn(user("alice"))
      // An empty body starts with the default config.
      const empty = yield* request("POST", "/api/session", undefined, alice.headers)
      assert.strictEqual(empty.status, 201, empty.text)
      assert.deepStrictEqual(empty.json["config"], {
        sampleRate: 16000,
        channels: 1,
        encoding: "s16le",
        language: "en-US",
        asr: {},
        aic: true,
        idleTimeoutSeconds: 300
      })

      const created = yield* request("POST", "/api/session", { sampleRate: 48000, encoding: "opus", language: "de-DE", asr: { model: "fast" } }, alice.headers)
      assert.strictEqual(created.status, 201, created.text)
      const id = SessionId.make(str(created.json["id"]))
      assert.strictEqual(created.json["state"], "pending")
      assert.strictEqual(created.json["userId"], alice.userId)
      assert.strictEqual(created.json["deviceId"], alice.deviceId)
      assert.include(record(created.json["config"]), { sampleRate: 48000, encoding: "opus", language: "de-DE", channels: 1 })
      assert.isNull(created.json["startedAt"])

      const active = yield* activateSession(id)
      assert.strictEqual(active.state, "active")
      assert.isString(active.startedAt)

      const stopped = yield* request("POST", `/api/session/${id}/stop`, undefined, alice.headers)
      assert.strictEqual(stopped.status, 200, stopped.text)
      assert.strictEqual(stopped.json["state"], "completed")
      assert.isString(stopped.json["endedAt"])
      const fetched = yield* request("GET", `/api/session/${id}`, undefined, alice.headers)
      assert.strictEqual(fetched.json["state"], "completed")

      const actor = `user:${alice.userId}/device:${alice.deviceId}`
      assert.deepStrictEqual(yield* events(id), [
        { from: null, to: "pending", actor, reason: "start" },
        { from: "pending", to: "active", actor: "media", reason: "media connected" },
        { from: "active", to: "completed", actor, reason: "stopped by client" }
      ])
      assert.isTrue(logs.lines.some((l) => l["event"] === "session_transition" && l["sessionId"] === id && l["to"] === "completed"))
    }))

  it.effect("every illegal transition is 409 naming both states and changes nothing", () =>
    Effect.gen(function*() {
      const bob = yield* signIn(user("bob"))
      // pending -> completed is a cancellation (stop before media); a second stop is refused and changes nothing
      const pending = yield* start(bob.headers)
      const cancelled = yield* request("POST", `/api/session/${pending}/stop`, undefined, bob.headers)
      assert.strictEqual(cancelled.status, 200, cancelled.text)
      assert.strictEqual(cancelled.json["state"], "completed")
      assert.strictEqual((yield* events(pending)).at(-1)?.reason, "cancelled by client before media")
      let before = yield* snapshot(pending)
      assertConflict(yield* request("POST", `/api/session/${pending}/stop`, undefined, bob.headers), "completed", "completed")
      assert.deepStrictEqual(yield* snapshot(pending), before)

      // completed -> completed (stop twice), -> active; config and context refused
      const done = yield* start(bob.headers)
      yield* activateSession(done)
      assert.strictEqual((yield* request("POST", `/api/session/${done}/stop`, undefined, bob.headers)).status, 200)
      before = yield* snapshot(done)
      assertConflict(yield* request("POST", `/api/session/${done}/stop`, undefined, bob.headers), "completed", "completed")
      const again = yield* Effect.flip(activateSession(done))
      assert.deepInclude(again, { _tag: "IllegalTransition", from: "completed", to: "active" })
      const patch = yield* request("PATCH", `/api/session/${done}/config`, { language: "fr" }, bob.headers)
      assert.strictEqual(patch.status, 409, patch.text)
      assert.strictEqual(patch.json["state"], "completed")
      assert.strictEqual((yield* request("POST", `/api/session/${done}/context`, { role: "user", text: "late" }, bob.headers)).status, 409)
      assert.deepStrictEqual(yield* snapshot(done), before)

      // expired -> active, -> completed
      const idle = yield* start(bob.headers)
      yield* backdate([idle])
      assert.isAtLeast(yield* sweepOnce, 1)
      before = yield* snapshot(idle)
      assert.deepInclude(yield* Effect.flip(activateSession(idle)), { _tag: "IllegalTransition", from: "expired", to: "active" })
      assertConflict(yield* request("POST", `/api/session/${idle}/stop`, undefined, bob.headers), "expired", "completed")
      assert.deepStrictEqual(yield* snapshot(idle), before)

      // error -> anything
      const broken = yield* start(bob.headers)
      const failed = yield* failSession(broken, "decoder crashed")
      assert.strictEqual(failed.state, "error")
      assert.strictEqual(failed.error, "decoder crashed")
      before = yield* snapshot(broken)
      assertConflict(yield* request("POST", `/api/session/${broken}/stop`, undefined, bob.headers), "error", "completed")
      assert.deepInclude(yield* Effect.flip(activateSession(broken)), { from: "error", to: "active" })
      assert.deepInclude(yield* Effect.flip(failSession(broken, "again")), { from: "error", to: "error" })
      assert.strictEqual((yield* request("PATCH", `/api/session/${broken}/config`, { aic: false }, bob.headers)).status, 409)
      assert.deepStrictEqual(yield* snapshot(broken), before)
    }))

  it.effect("two concurrent stops: exactly one 200 and one 409, one completed event", () =>
    Effect.gen(function*() {
      const carol = yield* signIn(user("carol"))
      for (let round = 0; round < 5; round++) {
        const id = yield* start(carol.headers)
        yield* activateSession(id)
        const results = yield* Effect.all(
          [0, 1].map(() => request("POST", `/api/session/${id}/stop`, undefined, carol.headers)),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(results.map((r) => r.status).sort(), [200, 409], `round ${round}`)
        const loser = results.find((r) => r.status === 409)
        assert.strictEqual(loser?.json["from"], "completed")
        assert.lengthOf((yield* events(id)).filter((e) => e.to === "completed"), 1)
      }
    }))

  it.effect("the sweeper on four concurrent runners expires each due session exactly once", () =>
    Effect.gen(function*() {
      const dave = yield* signIn(user("dave"))
      const store = yield* Sessions
      const config = { sampleRate: 16000, channels: 1, encoding: "s16le", language: "en", asr: {}, aic: false, idleTimeoutSeconds: 60 } as const
      const make = Effect.orDie(store.create({ userId: dave.userId, deviceId: dave.deviceId, config, actor: "test", reason: "start" }))
      const due = yield* Effect.all(Array.from({ length: 120 }, () => make), { concurrency: 8 })
      const ids = due.map((s) => s.id)
      yield* Effect.forEach(ids.slice(0, 60), (id) => activateSession(id), { concurrency: 8, discard: true })
      const fresh = yield* make
      yield* backdate(ids)

      const counts = yield* Effect.all([sweepOnce, sweepOnce, sweepOnce, sweepOnce], { concurrency: "unbounded" })
      assert.strictEqual(counts.reduce((a, b) => a + b, 0), 120, `per runner: ${counts.join(", ")}`)
      const sql = yield* SqlClient
      const rows = yield* sql<{ state: string; expired: string }>`
        SELECT s.state, (SELECT count(*) FROM session_events e WHERE e.session_id = s.id AND e.to_state = 'expired')::text AS expired
        FROM sessions s WHERE s.id IN ${sql.in(ids)}`
      assert.lengthOf(rows, 120)
      assert.isTrue(rows.every((r) => r.state === "expired" && r.expired === "1"))
      assert.strictEqual((yield* request("GET", `/api/session/${fresh.id}`, undefined, dave.headers)).json["state"], "pending")
      assert.strictEqual(yield* sweepOnce, 0)

      const metrics = (yield* request("GET", "/metrics")).text
      assert.match(metrics, /^auralink_sessions_expired_total \d+/m)
      assert.match(metrics, /^auralink_session_expiry_sweeps_total [1-9]/m)
      assert.match(metrics, /^auralink_session_transitions_total\{from="active",to="expired"\} [1-9]/m)
      assert.match(metrics, /^auralink_sessions\{state="expired"\} [1-9]/m)
    }))

  it.effect("activity restarts the idle clock", () =>
    Effect.gen(function*() {
      const erin = yield* signIn(user("erin"))
      const id = yield* start(erin.headers, { idleTimeoutSeconds: 30 })
      // Active: a pending session's deadline is its pending timeout, which activity does not extend (limits.test.ts).
      yield* activateSession(id)
      const before = str((yield* request("GET", `/api/session/${id}`, undefined, erin.headers)).json["expiresAt"])
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
      const patched = yield* request("PATCH", `/api/session/${id}/config`, { idleTimeoutSeconds: 600 }, erin.headers)
      assert.strictEqual(patched.status, 200, patched.text)
      const after = str(patched.json["expiresAt"])
      assert.isAbove(Date.parse(after) - Date.parse(before), 500_000)
      assert.strictEqual(record(patched.json["config"])["idleTimeoutSeconds"], 600)
    }))

  it.effect("ownership: other users get 403, unknown ids 404, operators may read and list all", () =>
    Effect.gen(function*() {
      const owner = yield* signIn(user("owner"))
      const stranger = yield* signIn(user("stranger"))
      const id = yield* start(owner.headers)
      const calls = [
        ["GET", `/api/session/${id}`, undefined],
        ["POST", `/api/session/${id}/stop`, undefined],
        ["PATCH", `/api/session/${id}/config`, { language: "fr" }],
        ["POST", `/api/session/${id}/context`, { role: "user", text: "hi" }]
      ] as const
      const before = yield* snapshot(id)
      for (const [method, path, body] of calls) {
        const res = yield* request(method, path, body, stranger.headers)
        assert.strictEqual(res.status, 403, `${method} ${path}: ${res.text}`)
        assert.strictEqual((yield* request(method, path, body)).status, 401, `${method} ${path} without a token`)
      }
      assert.deepStrictEqual(yield* snapshot(id), before)
      for (const [unknown, status] of [[crypto.randomUUID(), 404], ["not-a-uuid", 400]] as const) {
        for (const [method, path, body] of calls) {
          const res = yield* request(method, path.replace(id, unknown), body, owner.headers)
          assert.strictEqual(res.status, status, `${method} ${path}: ${res.text}`)
        }
      }
      const theirs = yield* request("GET", `/api/sessions?userId=${owner.userId}`, undefined, stranger.headers)
      assert.strictEqual(theirs.status, 403)
      const mine = yield* request("GET", "/api/sessions", undefined, stranger.headers)
      assert.deepStrictEqual(mine.json["sessions"], [])

      // An operator-scoped token (no endpoint issues one yet, so it is signed here).
      const opUser = user("operator")
      const opDevice = yield* registerDevice(opUser)
      const signed = yield* TokenSigner.use((s) => s.sign({ userId: opUser, deviceId: opDevice.deviceId, scope: "session operator" }))
      const op = bearer(signed.token)
      const read = yield* request("GET", `/api/session/${id}`, undefined, op)
      assert.strictEqual(read.status, 200, read.text)
      const listed = yield* request("GET", `/api/sessions?userId=${owner.userId}`, undefined, op)
      assert.deepStrictEqual(idsOf(listed.body), [id])
      const all = yield* request("GET", "/api/sessions?limit=100", undefined, op)
      assert.isAbove(sessionsOf(all.body).length, 1)
      // Reading is not acting: an operator still cannot stop another user's session.
      assert.strictEqual((yield* request("POST", `/api/session/${id}/stop`, undefined, op)).status, 403)
    }))

  it.effect("lists own sessions newest first, pages with an opaque cursor, filters by state", () =>
    Effect.gen(function*() {
      const frank = yield* signIn(user("frank"))
      const ids: Array<string> = []
      for (let i = 0; i < 7; i++) ids.push(yield* start(frank.headers))
      for (const id of [ids[1], ids[3], ids[4]]) yield* activateSession(SessionId.make(str(id)))
      const newestFirst = [...ids].reverse()

      const seen: Array<string> = []
      let cursor: string | undefined
      let pages = 0
      do {
        const res = yield* request("GET", `/api/sessions?limit=3${cursor === undefined ? "" : `&cursor=${cursor}`}`, undefined, frank.headers)
        assert.strictEqual(res.status, 200, res.text)
        seen.push(...idsOf(res.body))
        const next = record(res.body)["nextCursor"]
        cursor = next === undefined ? undefined : str(next)
        pages++
      } while (cursor !== undefined)
      assert.deepStrictEqual(seen, newestFirst)
      assert.strictEqual(pages, 3)

      const active = yield* request("GET", "/api/sessions?state=active&limit=2", undefined, frank.headers)
      assert.deepStrictEqual(idsOf(active.body), [ids[4], ids[3]])
      const rest = yield* request("GET", `/api/sessions?state=active&limit=2&cursor=${str(record(active.body)["nextCursor"])}`, undefined, frank.headers)
      assert.deepStrictEqual(rest.body, { sessions: [sessionsOf(rest.body)[0]] })
      assert.strictEqual(idsOf(rest.body)[0], ids[1])

      for (const query of ["cursor=nonsense", `cursor=${Buffer.from("[\"x\",\"y\"]").toString("base64url")}`, "cursor=%00%01"]) {
        const res = yield* request("GET", `/api/sessions?${query}`, undefined, frank.headers)
        assert.strictEqual(res.status, 400, `${query}: ${res.text}`)
      }
      for (const query of ["limit=0", "limit=101", "limit=abc", "limit=1.5", "state=sleeping"]) {
        const res = yield* request("GET", `/api/sessions?${query}`, undefined, frank.headers)
        assert.strictEqual(res.status, 400, `${query}: ${res.text}`)
        assert.include(JSON.stringify(res.json["errors"]), query.split("=")[0] ?? "")
      }
      assert.strictEqual((yield* request("GET", "/api/sessions?limit=100", undefined, frank.headers)).status, 200)
    }))

  it.effect("context keeps the newest SESSION_CONTEXT_CAP entries and is returned by GET", () =>
    Effect.gen(function*() {
      const gina = yield* signIn(user("gina"))
      const id = yield* start(gina.headers)
      for (let i = 1; i <= 5; i++) {
        const at = i === 5 ? { at: "2026-01-02T03:04:05.000Z" } : {}
        const res = yield* request("POST", `/api/session/${id}/context`, { role: i % 2 === 0 ? "assistant" : "user", text: `turn ${i}`, ...at }, gina.headers)
        assert.strictEqual(res.status, 200, res.text)
      }
      const got = yield* request("GET", `/api/session/${id}`, undefined, gina.headers)
      const context = list(got.json["context"]).map(record)
      assert.deepStrictEqual(context.map((c) => c["text"]), ["turn 3", "turn 4", "turn 5"])
      assert.lengthOf(context, CONTEXT_CAP)
      assert.strictEqual(context[1]?.["role"], "assistant")
      assert.strictEqual(context[2]?.["at"], "2026-01-02T03:04:05.000Z")
      assert.isFalse(Number.isNaN(Date.parse(str(context[0]?.["at"]))))
    }))

  it.effect("appendContextMany: one statement appends in order per session, keeps the newest cap, skips closed sessions", () =>
    Effect.gen(function*() {
      const ivy = yield* signIn(user("ivy"))
      const [a, b, closed] = [yield* start(ivy.headers), yield* start(ivy.headers), yield* start(ivy.headers)]
      assert.strictEqual((yield* request("POST", `/api/session/${a}/context`, { role: "assistant", text: "a0" }, ivy.headers)).status, 200)
      assert.strictEqual((yield* request("POST", `/api/session/${closed}/stop`, undefined, ivy.headers)).status, 200)
      const sessions = yield* Sessions
      // Seen before the batch: the cache must not serve it after.
      assert.strictEqual((yield* request("GET", `/api/session/${b}`, undefined, ivy.headers)).status, 200)
      const entry = (text: string) => ({ role: "user" as const, text })
      const appended = yield* sessions.appendContextMany(
        [
          { id: SessionId.make(a), entry: entry("a1") },
          { id: SessionId.make(b), entry: entry("b1") },
          { id: SessionId.make(a), entry: entry("a2") },
          { id: SessionId.make(closed), entry: entry("late") },
          { id: SessionId.make(a), entry: entry("a3") }
        ],
        CONTEXT_CAP
      )
      assert.sameMembers([...appended], [a, b])
      const texts = (id: string) =>
        Effect.map(request("GET", `/api/session/${id}`, undefined, ivy.headers), (r) => list(r.json["context"]).map((c) => record(c)["text"]))
      assert.deepStrictEqual(yield* texts(a), ["a1", "a2", "a3"])
      assert.deepStrictEqual(yield* texts(b), ["b1"])
      assert.deepStrictEqual(yield* texts(closed), [])
      assert.deepStrictEqual(yield* sessions.appendContextMany([], CONTEXT_CAP), [])
    }))

  it.effect("findMany: the sessions of the ids that exist, as find reads them, in one statement", () =>
    Effect.gen(function*() {
      const jay = yield* signIn(user("jay"))
      const [a, b] = [yield* start(jay.headers, { room: "r-1" }), yield* start(jay.headers)]
      assert.strictEqual((yield* request("POST", `/api/session/${b}/stop`, undefined, jay.headers)).status, 200)
      const sessions = yield* Sessions
      const unknown = SessionId.make(crypto.randomUUID())
      const found = yield* sessions.findMany([SessionId.make(a), SessionId.make(b), unknown])
      assert.sameMembers(found.map((s) => s.id), [a, b])
      for (const s of found) assert.deepStrictEqual(s, Option.getOrThrow(yield* sessions.findFresh(s.id)))
      assert.strictEqual(found.find((s) => s.id === a)?.config.room, "r-1")
      assert.strictEqual(found.find((s) => s.id === b)?.state, "completed")
      assert.deepStrictEqual(yield* sessions.findMany([]), [])
    }))

  it.effect("the read cache never serves a state older than a write of this process", () =>
    Effect.gen(function*() {
      const hank = yield* signIn(user("hank"))
      const id = yield* start(hank.headers)
      const state = () => Effect.map(request("GET", `/api/session/${id}`, undefined, hank.headers), (r) => r.json["state"])
      assert.strictEqual(yield* state(), "pending") // now cached
      yield* activateSession(id)
      assert.strictEqual(yield* state(), "active")
      const patched = yield* request("PATCH", `/api/session/${id}/config`, { language: "it" }, hank.headers)
      assert.strictEqual(patched.status, 200)
      assert.strictEqual(record((yield* request("GET", `/api/session/${id}`, undefined, hank.headers)).json["config"])["language"], "it")
      yield* request("POST", `/api/session/${id}/stop`, undefined, hank.headers)
      assert.strictEqual(yield* state(), "completed")

      // Reads racing a transition: once it returns, no read sees the old state.
      const other = yield* start(hank.headers)
      const store = yield* Sessions
      const readers = yield* Effect.forkChild(Effect.forEach(Array.from({ length: 50 }, (_, i) => i), () => store.find(other), { concurrency: 10 }))
      yield* activateSession(other)
      const afterwards = yield* Effect.orDie(store.find(other))
      assert.strictEqual(afterwards._tag === "Some" ? afterwards.value.state : undefined, "active")
      yield* Fiber.join(readers)
      const later = yield* Effect.orDie(store.find(other))
      assert.strictEqual(later._tag === "Some" ? later.value.state : undefined, "active")
    }))

  it.effect("watch: the current state, then each change, ending at a terminal state", () =>
    Effect.gen(function*() {
      const ivy = yield* signIn(user("ivy"))
      const id = yield* start(ivy.headers)
      const principal = { userId: ivy.userId, deviceId: ivy.deviceId, scope: "session", jti: "t", exp: 0 }
      const stream = yield* watchSession(principal, id)
      const collected = yield* Effect.forkChild(Stream.runCollect(stream))
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
      yield* activateSession(id)
      yield* request("POST", `/api/session/${id}/stop`, undefined, ivy.headers)
      const states = Array.from(yield* Fiber.join(collected), (s) => s.state)
      assert.deepStrictEqual(states, ["pending", "active", "completed"])
      const stranger = yield* signIn(user("ivy-stranger"))
      const denied = yield* Effect.flip(watchSession({ ...principal, userId: stranger.userId }, id))
      assert.strictEqual(denied._tag, "SessionForbidden")
    }))

  it.effect("malformed ids are 400 naming the field on every REST edge (session, signaling, events, device paths); nothing changes", () =>
    Effect.gen(function*() {
      const kim = yield* signIn(user("kim"))
      const id = yield* start(kim.headers)
      const before = yield* snapshot(id)
      const longTransport = "t".repeat(65)
      const cases = [
        ["GET", "/api/session/not-a-uuid", undefined, "id"],
        ["POST", "/api/session/not-a-uuid/stop", undefined, "id"],
        ["PATCH", "/api/session/not-a-uuid/config", { language: "fr" }, "id"],
        ["POST", "/api/session/not-a-uuid/context", { role: "user", text: "hi" }, "id"],
        ["GET", "/api/webrtc/not-a-uuid/rtp-capabilities", undefined, "sessionId"],
        ["POST", "/api/webrtc/not-a-uuid/transports", undefined, "sessionId"],
        ["POST", "/api/webrtc/not-a-uuid/plain-transports", { comedia: true }, "sessionId"],
        ["POST", `/api/webrtc/not-a-uuid/transports/${crypto.randomUUID()}/restart-ice`, undefined, "sessionId"],
        ["POST", `/api/webrtc/${id}/transports/${longTransport}/restart-ice`, undefined, "transportId"],
        ["DELETE", `/api/webrtc/${id}/transports/${longTransport}`, undefined, "transportId"],
        ["GET", "/api/webrtc/not-a-uuid/events", undefined, "sessionId"],
        ["DELETE", "/api/auth/devices/not-a-uuid", undefined, "id"]
      ] as const
      for (const [method, path, body, field] of cases) {
        const headers = path.startsWith("/api/auth/") ? { "x-provisioning-key": PROVISIONING_KEY } : kim.headers
        const res = yield* request(method, path, body, headers)
        assert.strictEqual(res.status, 400, `${method} ${path}: ${res.text}`)
        assert.strictEqual(res.headers.get("content-type"), "application/problem+json", path)
        assert.include(res.text, `"${field}"`, `${method} ${path} names ${field}: ${res.text}`)
      }
      assert.deepStrictEqual(yield* snapshot(id), before)
    }))

  it.effect("bad input: malformed JSON, schema failures naming the field, oversized body; nothing stored", () =>
    Effect.gen(function*() {
      const jill = yield* signIn(user("jill"))
      const count = Effect.map(request("GET", "/api/sessions?limit=100", undefined, jill.headers), (r) => sessionsOf(r.body).length)
      const malformed = yield* request("POST", "/api/session", "{\"sampleRate\": 16000", jill.headers)
      assert.strictEqual(malformed.status, 400, malformed.text)
      assert.strictEqual(malformed.headers.get("content-type"), "application/problem+json")
      const cases: Record<string, unknown> = {
        sampleRate: { sampleRate: 44100 },
        channels: { channels: 2 },
        encoding: { encoding: "mp3" },
        language: { language: "english please" },
        idleTimeoutSeconds: { idleTimeoutSeconds: 5 },
        aic: { aic: "yes" }
      }
      for (const [field, body] of Object.entries(cases)) {
        const res = yield* request("POST", "/api/session", body, jill.headers)
        assert.strictEqual(res.status, 400, `${field}: ${res.text}`)
        assert.include(JSON.stringify(res.json["errors"]), field, field)
      }
      assert.strictEqual(yield* count, 0)

      const id = yield* start(jill.headers)
      const badPatch = yield* request("PATCH", `/api/session/${id}/config`, { sampleRate: 44100 }, jill.headers)
      assert.strictEqual(badPatch.status, 400)
      assert.include(JSON.stringify(badPatch.json["errors"]), "sampleRate")
      const badRole = yield* request("POST", `/api/session/${id}/context`, { role: "robot", text: "x" }, jill.headers)
      assert.strictEqual(badRole.status, 400)
      assert.include(JSON.stringify(badRole.json["errors"]), "role")
      const huge = yield* request("POST", `/api/session/${id}/context`, { role: "user", text: "x".repeat(BODY_LIMIT + 1) }, jill.headers)
      assert.strictEqual(huge.status, 413, huge.text)
      const got = yield* request("GET", `/api/session/${id}`, undefined, jill.headers)
      assert.deepStrictEqual(got.json["context"], [])
      assert.strictEqual(record(got.json["config"])["sampleRate"], 16000)
    }))

  it.effect("storable text: NUL, unpaired surrogates, BOM or invalid UTF-8 bodies and impossible times are 400 naming the field; nothing stored", () =>
    Effect.gen(function*() {
      const kim = yield* signIn(user("kim"))
      const count = Effect.map(request("GET", "/api/sessions?limit=100", undefined, kim.headers), (r) => sessionsOf(r.body).length)
      const starts: ReadonlyArray<readonly [unknown, string]> = [
        [{ asr: { "key\u0000": "v" } }, "asr"],
        [{ asr: { model: "v\u0000" } }, "asr"],
        [{ asr: { model: "\ud800" } }, "asr"],
        [{ asr: { ["\udfff"]: true } }, "asr"]
      ]
      for (const [body, field] of starts) {
        const res = yield* request("POST", "/api/session", body, kim.headers)
        assert.strictEqual(res.status, 400, `${JSON.stringify(body)}: ${res.text}`)
        assert.strictEqual(res.headers.get("content-type"), "application/problem+json")
        assert.include(JSON.stringify(res.json["errors"]), field)
        // One reason, not every branch of the value union (a number branch once added "Expected \"Infinity\" | …").
        assert.notInclude(res.text, "Infinity")
      }
      // A byte-order mark or bytes that are not UTF-8 (here 0xff inside a string) are not JSON text (RFC 8259 §8.1).
      const raw = (path: string, method: string, bytes: Uint8Array<ArrayBuffer>) =>
        Effect.gen(function*() {
          const url = yield* baseUrl
          const response = yield* Effect.promise(() =>
            fetch(`${url}${path}`, { method, body: bytes, headers: { ...kim.headers, "content-type": "application/json" } })
          )
          return { status: response.status, text: yield* Effect.promise(() => response.text()) }
        })
      const utf8 = (text: string) => new TextEncoder().encode(text)
      const bom = yield* raw("/api/session", "POST", new Uint8Array([0xef, 0xbb, 0xbf, ...utf8("{}")]))
      assert.strictEqual(bom.status, 400, bom.text)
      const invalid = yield* raw("/api/session", "POST", new Uint8Array([...utf8("{\"asr\":{\"k\":\""), 0xff, ...utf8("\"}}")]))
      assert.strictEqual(invalid.status, 400, invalid.text)
      assert.strictEqual(yield* count, 0)

      const id = yield* start(kim.headers)
      const before = yield* snapshot(id)
      const patch = yield* request("PATCH", `/api/session/${id}/config`, { asr: { model: "a\u0000b" } }, kim.headers)
      assert.strictEqual(patch.status, 400, patch.text)
      assert.include(JSON.stringify(patch.json["errors"]), "asr")
      const contexts: ReadonlyArray<readonly [unknown, string]> = [
        [{ role: "user", text: "hello\u0000" }, "text"],
        [{ role: "user", text: "\udc00" }, "text"],
        [{ role: "user", text: "hi", at: "9999-99-99T99:99Z" }, "at"],
        [{ role: "user", text: "hi", at: "2025-02-30T10:00Z" }, "at"],
        [{ role: "user", text: "hi", at: "2025-01-01T24:00:00Z" }, "at"],
        [{ role: "user", text: "hi", at: "2025-01-01T10:00:00+25:00" }, "at"]
      ]
      for (const [body, field] of contexts) {
        const res = yield* request("POST", `/api/session/${id}/context`, body, kim.headers)
        assert.strictEqual(res.status, 400, `${JSON.stringify(body)}: ${res.text}`)
        assert.include(JSON.stringify(res.json["errors"]), field)
      }
      const badBody = yield* raw(`/api/session/${id}/context`, "POST", new Uint8Array([0xef, 0xbb, 0xbf, ...utf8("{\"role\":\"user\",\"text\":\"x\"}")]))
      assert.strictEqual(badBody.status, 400, badBody.text)
      assert.deepStrictEqual(yield* snapshot(id), before)
      // Real times (leap day, offsets, fractions) still pass.
      for (const at of ["2024-02-29T23:59:59.123Z", "2025-06-01T08:30+02:00"]) {
        const ok = yield* request("POST", `/api/session/${id}/context`, { role: "user", text: "ünïcødé ✓ 🎤", at }, kim.headers)
        assert.strictEqual(ok.status, 200, ok.text)
      }
    }))

  it.effect("/status has a sessions section; the OpenAPI document has the session endpoints", () =>
    Effect.gen(function*() {
      const status = yield* request("GET", "/status")
      const sessions = record(status.json["sessions"])
      assert.hasAllKeys(sessions, ["pending", "active", "completed", "error", "expired"])
      assert.isAbove(Number(sessions["completed"]), 0)
      const paths = record((yield* request("GET", "/openapi.json")).json["paths"])
      for (
        const path of ["/api/session", "/api/session/{id}", "/api/session/{id}/stop", "/api/session/{id}/config", "/api/session/{id}/context", "/api/sessions"]
      ) {
        assert.property(paths, path)
      }
    }))
})
