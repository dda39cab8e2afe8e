import { assert, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { ApiRoutes } from "../../src/adapters/http/routes.ts"
import { LIVEKIT_WEBHOOK_PATH } from "../../src/adapters/http/livekit-webhook.ts"
import { serveHttp } from "../../src/layers/HttpServer.ts"
import { JWT_SECRET, list, PROVISIONING_KEY, record, request, signIn, str } from "../support/auth.ts"
import { FakeLiveKit } from "../support/fake-livekit.ts"
import { Fake, fakeLiveKitLayer, liveKitEnv } from "../support/livekit.ts"
import { baseUrl } from "../support/http.ts"
import { REDIS_URL, runPrefix } from "../support/redis.ts"
import { onFreshDatabase } from "../support/server.ts"

const API_KEY = "rooms-test-key"
const API_SECRET = "rooms-test-secret-0123456789abcdef"
const INTERVAL_MS = 1000
const GRACE_MS = 1000
const AUTH_BUDGET = 60

const FakeLayer = fakeLiveKitLayer(API_KEY, API_SECRET)

const Server = Layer.unwrap(Fake.use((fake) =>
  Effect.succeed(
    onFreshDatabase(serveHttp(ApiRoutes, 0, "127.0.0.1"), {
      REDIS_URL,
      REDIS_KEY_PREFIX: `${runPrefix()}:`,
      JWT_SECRET,
      AUTH_PROVISIONING_KEY: PROVISIONING_KEY,
      ...liveKitEnv(fake, API_KEY, API_SECRET),
      WEBRTC_REQUEST_TIMEOUT_MS: "300",
      ROOM_SYNC_INTERVAL_MS: String(INTERVAL_MS),
      ROOM_STALE_CLEANUP_INTERVAL_MS: String(INTERVAL_MS),
      ROOM_STALE_GRACE_MS: String(GRACE_MS),
      RATE_LIMIT_DEFAULT_PER_MINUTE: "100000",
      // Sign-ins and unsigned webhooks each count against a budget of their own per client IP.
      RATE_LIMIT_AUTH_PER_MINUTE: String(AUTH_BUDGET),
      RATE_LIMIT_SESSION_PER_MINUTE: "100000"
    })
  )
)).pipe(Layer.provideMerge(FakeLayer))

const sleep = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

/** Polls until `check` holds or `timeoutMs` passes; the time it took. */
const within = <R>(timeoutMs: number, check: Effect.Effect<boolean, never, R>) =>
  Effect.gen(function*() {
    const started = performance.now()
    while (!(yield* check)) {
      if (performance.now() - started > timeoutMs) return assert.fail(`not within ${timeoutMs} ms`)
      yield* sleep(10)
    }
    return performance.now() - started
  })

const unique = (name: string) => `${name}-${crypto.randomUUID().slice(0, 8)}`

/** The fake delivers webhooks to this service. */
const deliverHere = Effect.gen(function*() {
  const fake = yield* Fake
  const url = `${yield* baseUrl}${LIVEKIT_WEBHOOK_PATH}`
  if (!fake.webhookUrls.includes(url)) fake.webhookUrls.push(url)
  return fake
})

const roomOf = (headers: Record<string, string>, name: string) => request("GET", `/api/rooms/${encodeURIComponent(name)}`, undefined, headers)
const identitiesIn = (headers: Record<string, string>, name: string) =>
  Effect.map(roomOf(headers, name), (res) => res.status === 200 ? list(res.json["participants"]).map((p) => str(record(p)["identity"])) : [])

const statusSection = Effect.map(
  request("GET", "/status", undefined, { "x-provisioning-key": PROVISIONING_KEY }),
  (res) => record(res.json["room_sync"])
)

/**
 * Webhooks signed with the right key by a LiveKit this service does not sync from, stamped a
 * minute ahead: no sync (stamped now) can overrule these events while a test runs.
 */
const unsyncedSigner = (room: string, identity: string) =>
  Effect.promise(async () => {
    const signer = new FakeLiveKit({ apiKey: API_KEY, apiSecret: API_SECRET })
    await signer.addRoom(room)
    await signer.join(room, identity)
    return { signer, ahead: Math.floor(Date.now() / 1000) + 60 }
  })

const postWebhook = (body: string, authorization?: string) =>
  Effect.gen(function*() {
    const url = `${yield* baseUrl}${LIVEKIT_WEBHOOK_PATH}`
    const headers: Record<string, string> = { "content-type": "application/webhook+json" }
    if (authorization !== undefined) headers["authorization"] = authorization
    const response = yield* Effect.promise(() => fetch(url, { method: "POST", body, headers }))
    return { status: response.status, json: record(yield* Effect.promise(() => response.json())) }
  })

layer(Server, { excludeTestServices: true, timeout: "60 seconds" })("rooms and LiveKit", (it) => {
  it.effect("the fake's rooms and participants appear within one sync interval", () =>
    Effect.gen(function*() {
      const fake = yield* Fake
      const { headers } = yield* signIn(unique("reader"))
      const name = unique("conference")
      yield* Effect.promise(() => fake.addRoom(name, { metadata: "{\"topic\":\"demo\"}" }))
      yield* Effect.promise(() => fake.join(name, "ada", { name: "Ada" }))
      yield* Effect.promise(() => fake.publishTrack(name, "ada", { kind: "audio" }))
      // One interval plus one sync's own time (the lease tick is a third of it).
      const took = yield* within(INTERVAL_MS + INTERVAL_MS / 3 + 200, Effect.map(identitiesIn(headers, name), (ids) => ids.includes("ada")))
      assert.isBelow(took, INTERVAL_MS * 2)
      const room = yield* roomOf(headers, name)
      assert.strictEqual(room.json["state"], "active")
      assert.strictEqual(room.json["metadata"], "{\"topic\":\"demo\"}")
      const ada = record(list(room.json["participants"])[0])
      assert.strictEqual(ada["name"], "Ada")
      assert.strictEqual(record(list(ada["tracks"])[0])["kind"], "audio")
      const rooms = yield* request("GET", "/api/rooms", undefined, headers)
      assert.isTrue(list(rooms.json["rooms"]).some((r) => record(r)["name"] === name && record(r)["numParticipants"] === 1))
    }))

  it.effect("a join or leave by webhook is visible through the API within 100 ms", () =>
    Effect.gen(function*() {
      const fake = yield* deliverHere
      const { headers } = yield* signIn(unique("reader"))
      const name = unique("webhook-room")
      yield* Effect.promise(() => fake.addRoom(name, { notify: true }))
      // The fake's join resolves once its webhook was answered: from then on, 100 ms.
      yield* Effect.promise(() => fake.join(name, "grace", { notify: true }))
      yield* within(100, Effect.map(identitiesIn(headers, name), (ids) => ids.includes("grace")))
      yield* Effect.promise(() => fake.leave(name, "grace", { notify: true }))
      yield* within(100, Effect.map(identitiesIn(headers, name), (ids) => !ids.includes("grace")))
    }))

  it.effect("forged, unsigned and tampered webhooks are 401 and change nothing", () =>
    Effect.gen(function*() {
      const { headers } = yield* signIn(unique("reader"))
      const name = unique("guarded")
      const { ahead, signer } = yield* unsyncedSigner(name, "mallory")
      const genuine = yield* Effect.promise(() => signer.signedWebhook({ event: "participant_joined", room: name, identity: "mallory", createdAt: ahead }))
      const forger = new FakeLiveKit({ apiKey: API_KEY, apiSecret: "not-the-secret-0123456789abcdef" })
      yield* Effect.promise(() => forger.addRoom(name))
      yield* Effect.promise(() => forger.join(name, "mallory"))
      const forged = yield* Effect.promise(() => forger.signedWebhook({ event: "participant_joined", room: name, identity: "mallory" }))
      const unsigned = yield* postWebhook(genuine.body)
      const badSignature = yield* postWebhook(forged.body, forged.authorization)
      const tampered = yield* postWebhook(genuine.body.replace("mallory", "mallor2"), genuine.authorization)
      const garbage = yield* postWebhook(genuine.body, "Bearer not-a-jwt")
      for (const res of [unsigned, badSignature, tampered, garbage]) {
        assert.strictEqual(res.status, 401)
        assert.strictEqual(res.json["title"], "Unauthorized")
      }
      assert.strictEqual((yield* roomOf(headers, name)).status, 404)
      // The genuine one still applies afterwards.
      const applied = yield* postWebhook(genuine.body, genuine.authorization)
      assert.strictEqual(applied.status, 200)
      assert.strictEqual(applied.json["result"], "applied")
      assert.deepStrictEqual(yield* identitiesIn(headers, name), ["mallory"])
    }))

  it.effect("a replayed or out-of-order delivery changes nothing", () =>
    Effect.gen(function*() {
      const { headers } = yield* signIn(unique("reader"))
      const name = unique("ordering")
      const { ahead, signer } = yield* unsyncedSigner(name, "lin")
      const joined = yield* Effect.promise(() => signer.signedWebhook({ event: "participant_joined", room: name, identity: "lin", createdAt: ahead + 1 }))
      const left = yield* Effect.promise(() => signer.signedWebhook({ event: "participant_left", room: name, identity: "lin", createdAt: ahead + 4 }))
      assert.strictEqual((yield* postWebhook(joined.body, joined.authorization)).json["result"], "applied")
      assert.deepStrictEqual(yield* identitiesIn(headers, name), ["lin"])
      assert.strictEqual((yield* postWebhook(left.body, left.authorization)).json["result"], "applied")
      assert.deepStrictEqual(yield* identitiesIn(headers, name), [])
      // LiveKit's retry of the join: the same id.
      assert.strictEqual((yield* postWebhook(joined.body, joined.authorization)).json["result"], "duplicate")
      // An older join under a new id (delivered late): the newer leave stands.
      const late = yield* Effect.promise(() => signer.signedWebhook({ event: "participant_joined", room: name, identity: "lin", createdAt: ahead + 2 }))
      assert.strictEqual((yield* postWebhook(late.body, late.authorization)).json["result"], "stale")
      assert.deepStrictEqual(yield* identitiesIn(headers, name), [])
      // A leave and a join stamped in the same second: the leave wins whatever the order.
      const sameSecondJoin = yield* Effect.promise(() =>
        signer.signedWebhook({ event: "participant_joined", room: name, identity: "lin", createdAt: ahead + 4 })
      )
      assert.strictEqual((yield* postWebhook(sameSecondJoin.body, sameSecondJoin.authorization)).json["result"], "stale")
      // Events this service does not keep are accepted and ignored.
      const egress = yield* Effect.promise(() => signer.signedWebhook({ event: "egress_started", room: name }))
      assert.strictEqual((yield* postWebhook(egress.body, egress.authorization)).json["result"], "ignored")
    }))

  it.effect("LiveKit down: syncs fail and are counted, state is kept, /ready shows webrtc_server down while ready; recovery", () =>
    Effect.gen(function*() {
      const fake = yield* Fake
      const { headers } = yield* signIn(unique("reader"))
      const name = unique("outage")
      yield* Effect.promise(() => fake.addRoom(name))
      yield* Effect.promise(() => fake.join(name, "kim"))
      yield* within(INTERVAL_MS * 3, Effect.map(identitiesIn(headers, name), (ids) => ids.includes("kim")))
      const before = yield* statusSection
      yield* Effect.promise(() => fake.down())
      yield* sleep(INTERVAL_MS * 3)
      const during = yield* statusSection
      assert.isAbove(Number(during["failed_syncs"]), Number(before["failed_syncs"]))
      assert.isBelow(Number(during["success_rate_percent"]), Number(before["success_rate_percent"]) + 0.0001)
      assert.deepStrictEqual(yield* identitiesIn(headers, name), ["kim"])
      const ready = yield* request("GET", "/ready")
      assert.strictEqual(ready.status, 200)
      const webrtc = record(record(ready.json["dependencies"])["webrtc_server"])
      assert.strictEqual(webrtc["status"], "down")
      assert.isFalse(webrtc["critical"])
      assert.isString(webrtc["lastError"])
      const metrics = yield* request("GET", "/metrics")
      assert.match(metrics.text, /auralink_room_syncs_total\{result="failure"\} [1-9]/)
      // Back: the next sync succeeds and picks up what changed meanwhile.
      yield* Effect.promise(() => fake.up())
      yield* Effect.promise(() => fake.leave(name, "kim"))
      yield* within(INTERVAL_MS * 3, Effect.map(identitiesIn(headers, name), (ids) => ids.length === 0))
      const after = yield* statusSection
      assert.isAbove(Number(after["successful_syncs"]), Number(during["successful_syncs"]))
      const readyAgain = yield* request("GET", "/ready")
      const webrtcAgain = record(record(readyAgain.json["dependencies"])["webrtc_server"])
      assert.strictEqual(webrtcAgain["status"], "up")
      // The failure seen while it was down stays readable.
      assert.strictEqual(webrtcAgain["lastError"], webrtc["lastError"])
    }))

  it.effect("stale cleanup removes finished rooms after the grace period, unless an open session names them", () =>
    Effect.gen(function*() {
      const fake = yield* Fake
      const { headers } = yield* signIn(unique("owner"))
      const gone = unique("gone")
      const kept = unique("kept")
      yield* Effect.promise(() => fake.addRoom(gone))
      yield* Effect.promise(() => fake.addRoom(kept))
      yield* within(INTERVAL_MS * 3, Effect.map(Effect.all([roomOf(headers, gone), roomOf(headers, kept)]), (rs) => rs.every((r) => r.status === 200)))
      const session = yield* request("POST", "/api/session", { room: kept }, headers)
      assert.strictEqual(session.status, 201, session.text)
      yield* Effect.promise(() => fake.removeRoom(gone))
      yield* Effect.promise(() => fake.removeRoom(kept))
      yield* within(INTERVAL_MS * 3, Effect.map(roomOf(headers, gone), (r) => r.json["state"] === "finished"))
      yield* within(GRACE_MS + INTERVAL_MS * 3, Effect.map(roomOf(headers, gone), (r) => r.status === 404))
      const stillThere = yield* roomOf(headers, kept)
      assert.strictEqual(stillThere.status, 200)
      assert.strictEqual(stillThere.json["state"], "finished")
      yield* request("POST", `/api/session/${str(session.json["id"])}/stop`, undefined, headers)
      yield* within(INTERVAL_MS * 4, Effect.map(roomOf(headers, kept), (r) => r.status === 404))
      const metrics = yield* request("GET", "/metrics")
      assert.match(metrics.text, /auralink_rooms_stale_removed_total [1-9]/)
    }))

  it.effect("rooms need an access token; a bad room name or session room is a 400", () =>
    Effect.gen(function*() {
      const { headers } = yield* signIn(unique("reader"))
      assert.strictEqual((yield* request("GET", "/api/rooms")).status, 401)
      assert.strictEqual((yield* request("GET", "/api/rooms/x", undefined, { authorization: "Bearer nope" })).status, 401)
      assert.strictEqual((yield* request("GET", `/api/rooms/${"x".repeat(300)}`, undefined, headers)).status, 400)
      assert.strictEqual((yield* request("GET", "/api/rooms/a%07b", undefined, headers)).status, 400)
      const unknown = yield* roomOf(headers, unique("nowhere"))
      assert.strictEqual(unknown.status, 404)
      assert.strictEqual(unknown.json["title"], "Not Found")
      const bad = yield* request("POST", "/api/session", { room: "" }, headers)
      assert.strictEqual(bad.status, 400)
      const badIdentity = yield* request("POST", "/api/session", { participantIdentity: "a\u0000b" }, headers)
      assert.strictEqual(badIdentity.status, 400)
    }))

  it.effect("a client sending unsigned webhooks is rate limited (429) once past its budget", () =>
    Effect.gen(function*() {
      const statuses: Array<number> = []
      for (let i = 0; i < AUTH_BUDGET + 5; i++) statuses.push((yield* postWebhook("{\"event\":\"room_started\"}")).status)
      assert.include(statuses, 401)
      assert.strictEqual(statuses.at(-1), 429)
    }))

  it.effect("/metrics has the seed's room metrics and still passes promtool with room traffic", () =>
    Effect.gen(function*() {
      const metrics = yield* request("GET", "/metrics")
      for (
        const name of [
          "auralink_rooms_active",
          "auralink_participants",
          "auralink_participants_total",
          "auralink_sync_success_rate",
          "auralink_room_sync_duration_seconds_bucket",
          "auralink_livekit_webhooks_total"
        ]
      ) {
        assert.match(metrics.text, new RegExp(`^${name}[ {]`, "m"), name)
      }
      const { checkMetricsWithPromtool } = yield* Effect.promise(() => import("../support/promtool.ts"))
      const checked = checkMetricsWithPromtool(metrics.text)
      assert.strictEqual(checked.status, 0, checked.output)
    }))
})
