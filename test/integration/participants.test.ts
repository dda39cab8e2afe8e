import { afterAll, assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { ApiRoutes } from "../../src/adapters/http/routes.ts"
import { Health } from "../../src/layers/Health.ts"
import { serveHttp } from "../../src/layers/HttpServer.ts"
import { Metrics } from "../../src/layers/Metrics.ts"
import { TokenSigner } from "../../src/layers/Tokens.ts"
import { bearer, JWT_SECRET, list, PROVISIONING_KEY, record, registerDevice, request, signIn, str } from "../support/auth.ts"
import { deleteKeys, REDIS_URL, runPrefix } from "../support/redis.ts"
import { onFreshDatabase } from "../support/server.ts"

const RUN = runPrefix()
const HISTORY_CAP = 3
const PRESENCE_TIMEOUT_MS = 1500

const Server = onFreshDatabase(serveHttp(ApiRoutes, 0, "127.0.0.1"), {
  REDIS_URL,
  JWT_SECRET,
  AUTH_PROVISIONING_KEY: PROVISIONING_KEY,
  QOS_HISTORY_CAP: String(HISTORY_CAP),
  PRESENCE_TIMEOUT_MS: String(PRESENCE_TIMEOUT_MS),
  RATE_LIMIT_AUTH_PER_MINUTE: "100000",
  RATE_LIMIT_SESSION_PER_MINUTE: "100000",
  RATE_LIMIT_DEFAULT_PER_MINUTE: "100000"
})

// Identities (user ids) carry the run prefix, so this run's keys in the shared Redis can be removed.
afterAll(() => deleteKeys(`auralink:participants:*${RUN}*`))

/** A user id unique to this run. */
const user = (name: string) => `${name}-${RUN}-${crypto.randomUUID().slice(0, 6)}`
const path = (identity: string, rest = "") => `/api/participants/${encodeURIComponent(identity)}${rest}`

const CAPABILITIES = {
  videoCodecs: ["H.264", "VP8", "VP9"],
  audioCodecs: ["Opus", "G.722"],
  maxResolution: "1080p",
  maxFrameRate: 30,
  maxBitrate: 2500,
  supportsAic: true,
  supportsSimulcast: true
}
const SEED_QOS = { packetLossPercent: 2.5, jitterMs: 15, rttMs: 45, bandwidthKbps: 2000 }

const sleep = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

/** An operator-scoped token (no endpoint issues one, so it is signed here, as the sessions tests do). */
const operator = Effect.gen(function*() {
  const id = user("operator")
  const device = yield* registerDevice(id)
  const signed = yield* TokenSigner.use((s) => s.sign({ userId: id, deviceId: device.deviceId, scope: "session operator" }))
  return bearer(signed.token)
})

/** What the owner reads of the participant: the state and the whole history (to prove a refused request changed nothing). */
const snapshot = (identity: string, headers: Record<string, string>) =>
  Effect.gen(function*() {
    const state = yield* request("GET", path(identity), undefined, headers)
    const history = yield* request("GET", path(identity, "/qos?limit=100"), undefined, headers)
    return { state: state.status === 200 ? omitPresenceClock(state.json) : state.status, history: history.body }
  })

/** The state without the computed, clock-dependent presence status (a snapshot compares what is stored). */
const omitPresenceClock = (state: Record<string, unknown>) => ({ ...state, presence: { ...record(state["presence"]), status: "-" } })

const assertProblem = (res: { status: number; headers: Headers; text: string }, status: number, label: string) => {
  assert.strictEqual(res.status, status, `${label}: ${res.text}`)
  assert.strictEqual(res.headers.get("content-type"), "application/problem+json", label)
}

layer(Server, { timeout: 120_000, excludeTestServices: true })("participants over REST", (it) => {
  it.effect("a device writes its own capabilities, QoS and presence and reads them back", () =>
    Effect.gen(function*() {
      const alice = yield* signIn(user("alice"))
      const caps = yield* request("PUT", path(alice.userId, "/capabilities"), CAPABILITIES, alice.headers)
      assert.strictEqual(caps.status, 200, caps.text)
      assert.strictEqual(caps.json["identity"], alice.userId)
      assert.deepStrictEqual(caps.json["capabilities"], CAPABILITIES)
      assert.isNull(caps.json["qos"])
      assert.deepInclude(record(caps.json["presence"]), { status: "active", setStatus: "active" })

      // No MOS in the report: the E-model's (2.5 % loss, 15 ms jitter, 45 ms RTT: 4.127 -> 4.13).
      const computed = yield* request("POST", path(alice.userId, "/qos"), SEED_QOS, alice.headers)
      assert.strictEqual(computed.status, 201, computed.text)
      assert.deepInclude(computed.json, { ...SEED_QOS, mosScore: 4.13, mosSource: "e-model", source: "reported" })
      assert.isFalse("sessionId" in computed.json)
      const reported = yield* request("POST", path(alice.userId, "/qos"), { ...SEED_QOS, mosScore: 4.1 }, alice.headers)
      assert.strictEqual(reported.status, 201, reported.text)
      assert.deepInclude(reported.json, { mosScore: 4.1, mosSource: "reported" })

      const away = yield* request("PUT", path(alice.userId, "/presence"), { status: "away" }, alice.headers)
      assert.strictEqual(away.status, 200, away.text)
      assert.deepInclude(away.json, { status: "away", setStatus: "away" })

      const state = yield* request("GET", path(alice.userId), undefined, alice.headers)
      assert.strictEqual(state.status, 200, state.text)
      assert.deepStrictEqual(state.json["capabilities"], CAPABILITIES)
      assert.deepStrictEqual(state.json["qos"], reported.json)
      const presence = record(state.json["presence"])
      assert.deepInclude(presence, { status: "away", setStatus: "away", updatedAt: away.json["updatedAt"] })
      assert.strictEqual(state.json["updatedAt"], presence["updatedAt"])
      assert.isAtLeast(Date.parse(str(presence["lastSeenAt"])), Date.parse(str(reported.json["timestamp"])))

      const history = yield* request("GET", path(alice.userId, "/qos"), undefined, alice.headers)
      assert.strictEqual(history.status, 200, history.text)
      assert.strictEqual(history.json["identity"], alice.userId)
      assert.deepStrictEqual(history.json["samples"], [reported.json, computed.json])
    }))

  it.effect("other users' devices get 403 and change nothing; operators may read and write any participant", () =>
    Effect.gen(function*() {
      const owner = yield* signIn(user("owner"))
      const stranger = yield* signIn(user("stranger"))
      assert.strictEqual((yield* request("PUT", path(owner.userId, "/capabilities"), CAPABILITIES, owner.headers)).status, 200)
      assert.strictEqual((yield* request("POST", path(owner.userId, "/qos"), SEED_QOS, owner.headers)).status, 201)
      const before = yield* snapshot(owner.userId, owner.headers)

      const calls = [
        ["GET", "", undefined],
        ["PUT", "/capabilities", { ...CAPABILITIES, maxFrameRate: 60 }],
        ["POST", "/qos", { ...SEED_QOS, packetLossPercent: 50 }],
        ["GET", "/qos", undefined],
        ["PUT", "/presence", { status: "offline" }]
      ] as const
      for (const [method, rest, body] of calls) {
        assertProblem(yield* request(method, path(owner.userId, rest), body, stranger.headers), 403, `${method} ${rest}`)
        assert.strictEqual((yield* request(method, path(owner.userId, rest), body)).status, 401, `${method} ${rest} without a token`)
        // A stranger cannot tell a known identity from an unknown one.
        assertProblem(yield* request(method, path(user("nobody"), rest), body, stranger.headers), 403, `${method} ${rest} (unknown)`)
      }
      assert.deepStrictEqual(yield* snapshot(owner.userId, owner.headers), before)

      const op = yield* operator
      const read = yield* request("GET", path(owner.userId), undefined, op)
      assert.strictEqual(read.status, 200, read.text)
      assert.deepStrictEqual(read.json["capabilities"], CAPABILITIES)
      const history = yield* request("GET", path(owner.userId, "/qos"), undefined, op)
      assert.strictEqual(list(history.json["samples"]).length, 1)
      const set = yield* request("PUT", path(owner.userId, "/presence"), { status: "idle" }, op)
      assert.strictEqual(set.status, 200, set.text)
      assert.strictEqual(record((yield* request("GET", path(owner.userId), undefined, owner.headers)).json["presence"])["setStatus"], "idle")
    }))

  it.effect("bad bodies and queries are 400 problem details naming the field, and change nothing", () =>
    Effect.gen(function*() {
      const bob = yield* signIn(user("bob"))
      assert.strictEqual((yield* request("PUT", path(bob.userId, "/capabilities"), CAPABILITIES, bob.headers)).status, 200)
      assert.strictEqual((yield* request("POST", path(bob.userId, "/qos"), SEED_QOS, bob.headers)).status, 201)
      const before = yield* snapshot(bob.userId, bob.headers)
      const cases = [
        ["PUT", "/capabilities", { ...CAPABILITIES, maxResolution: "huge" }, "maxResolution"],
        ["PUT", "/capabilities", { ...CAPABILITIES, maxFrameRate: "30" }, "maxFrameRate"],
        ["PUT", "/capabilities", { ...CAPABILITIES, maxFrameRate: 0 }, "maxFrameRate"],
        ["PUT", "/capabilities", { ...CAPABILITIES, videoCodecs: "H.264" }, "videoCodecs"],
        ["PUT", "/capabilities", { ...CAPABILITIES, supportsAic: "yes" }, "supportsAic"],
        ["POST", "/qos", { ...SEED_QOS, packetLossPercent: 150 }, "packetLossPercent"],
        ["POST", "/qos", { ...SEED_QOS, packetLossPercent: -1 }, "packetLossPercent"],
        ["POST", "/qos", { ...SEED_QOS, jitterMs: "15" }, "jitterMs"],
        ["POST", "/qos", { ...SEED_QOS, rttMs: null }, "rttMs"],
        ["POST", "/qos", { ...SEED_QOS, mosScore: 7 }, "mosScore"],
        ["POST", "/qos", { packetLossPercent: 1, jitterMs: 1, rttMs: 1 }, "bandwidthKbps"],
        ["PUT", "/presence", { status: "busy" }, "status"],
        ["PUT", "/presence", { status: 1 }, "status"],
        ["GET", "/qos?limit=0", undefined, "limit"],
        ["GET", "/qos?limit=abc", undefined, "limit"]
      ] as const
      for (const [method, rest, body, field] of cases) {
        const res = yield* request(method, path(bob.userId, rest), body, bob.headers)
        assertProblem(res, 400, `${method} ${rest} ${JSON.stringify(body)}`)
        assert.include(res.text, field, `${method} ${rest} names ${field}`)
      }
      assertProblem(yield* request("POST", path(bob.userId, "/qos"), "{\"packetLossPercent\": 1", bob.headers), 400, "malformed JSON")
      // An identity with a control character is not one.
      assertProblem(yield* request("GET", path("bad\u0001identity"), undefined, bob.headers), 400, "control character")
      assert.deepStrictEqual(yield* snapshot(bob.userId, bob.headers), before)
    }))

  it.effect("404 for an identity nothing is known of (after the access check)", () =>
    Effect.gen(function*() {
      const carol = yield* signIn(user("carol"))
      assertProblem(yield* request("GET", path(carol.userId), undefined, carol.headers), 404, "own, unknown")
      assertProblem(yield* request("GET", path(carol.userId, "/qos"), undefined, carol.headers), 404, "own history, unknown")
      assertProblem(yield* request("GET", path(user("ghost")), undefined, yield* operator), 404, "operator, unknown")
      // Once heard from, it is known.
      assert.strictEqual((yield* request("PUT", path(carol.userId, "/presence"), { status: "idle" }, carol.headers)).status, 200)
      assert.strictEqual((yield* request("GET", path(carol.userId), undefined, carol.headers)).status, 200)
      const history = yield* request("GET", path(carol.userId, "/qos"), undefined, carol.headers)
      assert.deepStrictEqual(history.json["samples"], [])
    }))

  it.effect("QoS history keeps the newest QOS_HISTORY_CAP samples, newest first; limit picks the newest n", () =>
    Effect.gen(function*() {
      const dave = yield* signIn(user("dave"))
      for (let i = 1; i <= HISTORY_CAP + 2; i++) {
        const res = yield* request("POST", path(dave.userId, "/qos"), { ...SEED_QOS, packetLossPercent: i }, dave.headers)
        assert.strictEqual(res.status, 201, res.text)
      }
      const loss = (body: unknown) => list(record(body)["samples"]).map((s) => record(s)["packetLossPercent"])
      const all = yield* request("GET", path(dave.userId, "/qos"), undefined, dave.headers)
      assert.deepStrictEqual(loss(all.body), [5, 4, 3])
      assert.deepStrictEqual(loss((yield* request("GET", path(dave.userId, "/qos?limit=2"), undefined, dave.headers)).body), [5, 4])
      assert.deepStrictEqual(loss((yield* request("GET", path(dave.userId, "/qos?limit=1000"), undefined, dave.headers)).body), [5, 4, 3])
      const state = yield* request("GET", path(dave.userId), undefined, dave.headers)
      assert.strictEqual(record(state.json["qos"])["packetLossPercent"], 5)
    }))

  it.effect("presence turns offline after PRESENCE_TIMEOUT_MS without a word, and back to the set status on the next write", () =>
    Effect.gen(function*() {
      const erin = yield* signIn(user("erin"))
      const set = yield* request("PUT", path(erin.userId, "/presence"), { status: "idle" }, erin.headers)
      assert.deepInclude(set.json, { status: "idle", setStatus: "idle" })
      yield* sleep(PRESENCE_TIMEOUT_MS + 300)
      const silent = record((yield* request("GET", path(erin.userId), undefined, erin.headers)).json["presence"])
      assert.deepInclude(silent, { status: "offline", setStatus: "idle", updatedAt: set.json["updatedAt"] })
      // Any write is word from the participant.
      assert.strictEqual((yield* request("POST", path(erin.userId, "/qos"), SEED_QOS, erin.headers)).status, 201)
      const back = record((yield* request("GET", path(erin.userId), undefined, erin.headers)).json["presence"])
      assert.deepInclude(back, { status: "idle", setStatus: "idle", updatedAt: set.json["updatedAt"] })
      assert.isAbove(Date.parse(str(back["lastSeenAt"])), Date.parse(str(silent["lastSeenAt"])))
    }))

  it.effect("the endpoints are in the OpenAPI document", () =>
    Effect.gen(function*() {
      const paths = record(record((yield* request("GET", "/openapi.json")).body)["paths"])
      for (const [template, methods] of [["", ["get"]], ["/capabilities", ["put"]], ["/qos", ["get", "post"]], ["/presence", ["put"]]] as const) {
        assert.hasAllKeys(record(paths[`/api/participants/{identity}${template}`]), methods, template)
      }
    }))

  it.effect("reads are counted (hit/miss) and the cache is on /status", () =>
    Effect.gen(function*() {
      const frank = yield* signIn(user("frank"))
      assert.strictEqual((yield* request("PUT", path(frank.userId, "/presence"), { status: "active" }, frank.headers)).status, 200)
      const counts = Effect.gen(function*() {
        const { registry } = yield* Metrics
        const values = (yield* Effect.promise(() =>
          registry.getSingleMetric("auralink_participant_state_reads_total")?.get() ?? Promise.resolve(undefined)
        ))?.values ?? []
        const of = (result: string) => values.find((v) => v.labels["result"] === result)?.value ?? 0
        return { hit: of("hit"), miss: of("miss") }
      })
      const before = yield* counts
      yield* request("GET", path(frank.userId), undefined, frank.headers)
      yield* request("GET", path(frank.userId), undefined, frank.headers)
      const after = yield* counts
      assert.isAtLeast(after.hit - before.hit, 1)
      const section = record((yield* (yield* Health).sections)["participants"])
      assert.hasAllKeys(section, ["cached", "cache_hits", "cache_misses", "cache_hit_pct"])
      assert.isAbove(Number(section["cached"]), 0)
      assert.isAbove(Number(section["cache_hit_pct"]), 0)
    }))
})
