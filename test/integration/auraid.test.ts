import { afterAll, assert, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as grpc from "@grpc/grpc-js"
import { AURAID_SERVICE, AuraIdGrpcLive } from "../../src/adapters/grpc/auraid.ts"
import { ApiRoutes } from "../../src/adapters/http/routes.ts"
import { AuraIdResolver } from "../../src/layers/AuraIdResolver.ts"
import { GrpcServer } from "../../src/layers/GrpcServer.ts"
import { Health } from "../../src/layers/Health.ts"
import { serveHttp } from "../../src/layers/HttpServer.ts"
import { TokenSigner } from "../../src/layers/Tokens.ts"
import { bearer, JWT_SECRET, list, PROVISIONING_KEY, record, registerDevice, request, signIn } from "../support/auth.ts"
import { assertStatus, clientFor, codeOf, serviceClient } from "../support/grpc-client.ts"
import { FakeCommunicationService, type FakeIdentity } from "../support/fake-communication-service.ts"
import { deleteKeys, REDIS_URL, runPrefix } from "../support/redis.ts"
import { onFreshDatabase } from "../support/server.ts"
import { startedFake } from "../support/fake-server.ts"

const RUN = runPrefix()
const API_KEY = "communication-test-key"
const TTL_SECONDS = 2
const NEGATIVE_TTL_SECONDS = 1

class Fake extends Context.Service<Fake, FakeCommunicationService>()("test/FakeCommunicationService") {}

const FakeLayer = Layer.effect(
  Fake,
  startedFake(() => new FakeCommunicationService({ apiKey: API_KEY }))
)

const Server = Layer.unwrap(
  Fake.use((fake) =>
    Effect.succeed(onFreshDatabase(Layer.mergeAll(serveHttp(ApiRoutes, 0, "127.0.0.1"), AuraIdGrpcLive.pipe(Layer.provideMerge(GrpcServer.layer))), {
      REDIS_URL,
      REDIS_KEY_PREFIX: `${RUN}:`,
      JWT_SECRET,
      AUTH_PROVISIONING_KEY: PROVISIONING_KEY,
      COMMUNICATION_SERVICE_URL: fake.url,
      COMMUNICATION_SERVICE_API_KEY: API_KEY,
      COMMUNICATION_SERVICE_TIMEOUT_MS: "1000",
      COMMUNICATION_SERVICE_RETRIES: "1",
      // Outages here are the fake's down(); the breaker has tests of its own.
      COMMUNICATION_SERVICE_BREAKER_FAILURES: "1000",
      AURAID_CACHE_TTL_SECONDS: String(TTL_SECONDS),
      AURAID_NEGATIVE_TTL_SECONDS: String(NEGATIVE_TTL_SECONDS),
      AURAID_STALE_MAX_SECONDS: "60",
      RATE_LIMIT_AUTH_PER_MINUTE: "100000",
      RATE_LIMIT_SESSION_PER_MINUTE: "100000",
      RATE_LIMIT_DEFAULT_PER_MINUTE: "100000"
    }))
  )
).pipe(Layer.provideMerge(FakeLayer))

afterAll(() => deleteKeys(`${RUN}:*`))

const sleep = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

/** A bare id unique to this test (its AuraID is `aura:<id>`). */
const unique = (name: string) => `${name}-${RUN}-${crypto.randomUUID().slice(0, 6)}`

const identity = (id: string, overrides: Partial<FakeIdentity> = {}): FakeIdentity => ({
  auraId: `aura:${id}`,
  displayName: `Display ${id}`,
  email: `${id}@example.com`,
  phone: `+1555${String(Math.floor(Math.random() * 1e7)).padStart(7, "0")}`,
  verified: true,
  privacy: "contacts",
  ...overrides
})

/** Puts identities into the fake; counters start at zero. */
const given = (...identities: ReadonlyArray<FakeIdentity>) =>
  Effect.map(Effect.service(Fake), (fake) => {
    fake.put(...identities)
    fake.resetCounters()
    return fake
  })

const operator = Effect.gen(function*() {
  const id = unique("operator")
  const device = yield* registerDevice(id)
  const signed = yield* TokenSigner.use((s) => s.sign({ userId: id, deviceId: device.deviceId, scope: "session operator" }))
  return bearer(signed.token)
})

const auraIdRpc = serviceClient("auraid.proto", AURAID_SERVICE)

const path = (id: string) => `/api/auraid/${encodeURIComponent(id)}`

layer(Server, { timeout: 120_000, excludeTestServices: true })("AuraID resolution", (it) => {
  it.effect("resolves an AuraID; email and phone only for its own user (either form) or an operator", () =>
    Effect.gen(function*() {
      const id = unique("alice")
      const alice = identity(id)
      yield* given(alice)
      const stranger = yield* signIn(unique("stranger"))
      const seen = yield* request("GET", path(`aura:${id}`), undefined, stranger.headers)
      assert.strictEqual(seen.status, 200, seen.text)
      assert.deepStrictEqual(seen.json, { ...alice, email: null, phone: null, stale: false, redacted: true })

      // The bare form names the same AuraID; a device whose user id is the bare id is its owner.
      const self = yield* signIn(id)
      const own = yield* request("GET", path(id), undefined, self.headers)
      assert.strictEqual(own.status, 200, own.text)
      assert.deepStrictEqual(own.json, { ...alice, stale: false, redacted: false })
      const selfPrefixed = yield* signIn(`aura:${id}`)
      assert.strictEqual((yield* request("GET", path(id), undefined, selfPrefixed.headers)).json["email"], alice.email)

      const byOperator = yield* request("GET", path(id), undefined, yield* operator)
      assert.deepStrictEqual(byOperator.json, { ...alice, stale: false, redacted: false })
      assert.strictEqual((yield* request("GET", path(id))).status, 401)
      assert.strictEqual((yield* Effect.service(Fake)).callCount("get"), 1, "one upstream call, the rest from cache")
    }))

  it.effect("honours the configured TTL: cached within it, asked again after it", () =>
    Effect.gen(function*() {
      const id = unique("ttl")
      const fake = yield* given(identity(id, { displayName: "Before" }))
      const user = yield* signIn(unique("reader"))
      assert.strictEqual((yield* request("GET", path(id), undefined, user.headers)).json["displayName"], "Before")
      fake.put(identity(id, { displayName: "After" }))
      assert.strictEqual((yield* request("GET", path(id), undefined, user.headers)).json["displayName"], "Before")
      assert.strictEqual(fake.callCount("get"), 1)
      yield* sleep(TTL_SECONDS * 1000 + 200)
      assert.strictEqual((yield* request("GET", path(id), undefined, user.headers)).json["displayName"], "After")
      assert.strictEqual(fake.callCount("get"), 2)
    }))

  it.effect("coalesces: 100 concurrent resolves of one id make one upstream call", () =>
    Effect.gen(function*() {
      const id = `aura:${unique("popular")}`
      const fake = yield* given(identity(id.slice(5)))
      fake.latencyMs = 100
      const resolver = yield* AuraIdResolver
      const answers = yield* Effect.forEach(Array.from({ length: 100 }), () => resolver.resolve(id), { concurrency: "unbounded" })
      fake.latencyMs = 0
      assert.isTrue(answers.every((a) => a._tag === "Some" && a.value.identity.auraId === id))
      assert.strictEqual(fake.callCount("get"), 1)
    }))

  it.effect("batch: deduplicated (both forms), cache first, one upstream batch for the misses, unknown ids in missing", () =>
    Effect.gen(function*() {
      const [a, b, c] = [unique("a"), unique("b"), unique("c")]
      const missing = unique("missing")
      const fake = yield* given(identity(a), identity(b), identity(c))
      const user = yield* signIn(unique("reader"))
      assert.strictEqual((yield* request("GET", path(a), undefined, user.headers)).status, 200)
      const res = yield* request("POST", "/api/auraid/resolve", { ids: [a, `aura:${a}`, b, `aura:${b}`, missing, c, b] }, user.headers)
      assert.strictEqual(res.status, 200, res.text)
      assert.deepStrictEqual(list(res.json["results"]).map((r) => record(r)["auraId"]), [`aura:${a}`, `aura:${b}`, `aura:${c}`])
      assert.isTrue(list(res.json["results"]).every((r) => record(r)["email"] === null))
      assert.deepStrictEqual(res.json["missing"], [`aura:${missing}`])
      assert.strictEqual(fake.callCount("batch"), 1)
      assert.deepStrictEqual(fake.batchedIds, [`aura:${b}`, `aura:${missing}`, `aura:${c}`])
      // All cached now (the unknown one negatively): no further upstream call.
      const again = yield* request("POST", "/api/auraid/resolve", { ids: [c, missing, a] }, user.headers)
      assert.deepStrictEqual(again.json["missing"], [`aura:${missing}`])
      assert.strictEqual(fake.callCount("batch"), 1)
    }))

  it.effect("reverse lookup by email or phone, redacted for others", () =>
    Effect.gen(function*() {
      const id = unique("contact")
      const person = identity(id)
      yield* given(person)
      const stranger = yield* signIn(unique("stranger"))
      const self = yield* signIn(id)
      const byEmail = yield* request("GET", `/api/auraid?email=${encodeURIComponent(person.email ?? "")}`, undefined, self.headers)
      assert.strictEqual(byEmail.status, 200, byEmail.text)
      assert.deepStrictEqual(byEmail.json, { ...person, stale: false, redacted: false })
      const byPhone = yield* request("GET", `/api/auraid?phone=${encodeURIComponent(person.phone ?? "")}`, undefined, stranger.headers)
      assert.strictEqual(byPhone.status, 200, byPhone.text)
      assert.deepInclude(byPhone.json, { auraId: person.auraId, email: null, phone: null, redacted: true })
      const unknown = yield* request("GET", `/api/auraid?email=${encodeURIComponent(`${unique("nobody")}@example.com`)}`, undefined, self.headers)
      assert.strictEqual(unknown.status, 404, unknown.text)
      assert.strictEqual(unknown.headers.get("content-type"), "application/problem+json")
    }))

  it.effect("negative caching: an unknown id is remembered for AURAID_NEGATIVE_TTL_SECONDS", () =>
    Effect.gen(function*() {
      const id = unique("late")
      const fake = yield* given()
      const user = yield* signIn(unique("reader"))
      assert.strictEqual((yield* request("GET", path(id), undefined, user.headers)).status, 404)
      fake.put(identity(id))
      assert.strictEqual((yield* request("GET", path(id), undefined, user.headers)).status, 404)
      assert.strictEqual(fake.callCount("get"), 1)
      yield* sleep(NEGATIVE_TTL_SECONDS * 1000 + 200)
      assert.strictEqual((yield* request("GET", path(id), undefined, user.headers)).status, 200)
      assert.strictEqual(fake.callCount("get"), 2)
    }))

  it.effect("stale-while-revalidate: serves an expired entry marked stale while the service is down, fresh after recovery", () =>
    Effect.gen(function*() {
      const id = unique("swr")
      const fake = yield* given(identity(id))
      const user = yield* signIn(unique("reader"))
      assert.strictEqual((yield* request("GET", path(id), undefined, user.headers)).json["stale"], false)
      yield* sleep(TTL_SECONDS * 1000 + 200)
      yield* Effect.promise(() => fake.down())
      const stale = yield* request("GET", path(id), undefined, user.headers)
      assert.strictEqual(stale.status, 200, stale.text)
      assert.deepInclude(stale.json, { auraId: `aura:${id}`, stale: true })
      const neverSeen = yield* request("GET", path(unique("unseen")), undefined, user.headers)
      assert.strictEqual(neverSeen.status, 503, neverSeen.text)
      assert.isNotNull(neverSeen.headers.get("retry-after"))
      const ready = yield* Health.use((h) => h.readiness)
      assert.deepInclude(ready.dependencies["communication_service"] ?? {}, { status: "down", critical: false })
      yield* Effect.promise(() => fake.up())
      const fresh = yield* request("GET", path(id), undefined, user.headers)
      assert.strictEqual(fresh.status, 200, fresh.text)
      assert.strictEqual(fresh.json["stale"], false)
    }))

  it.effect("retries a transient failure; bad input is 400 and never reaches the service", () =>
    Effect.gen(function*() {
      const id = unique("flaky")
      const fake = yield* given(identity(id))
      const user = yield* signIn(unique("reader"))
      fake.failNext(1, 503)
      assert.strictEqual((yield* request("GET", path(id), undefined, user.headers)).status, 200)
      assert.strictEqual(fake.callCount("get"), 2)

      fake.resetCounters()
      const bad = [
        yield* request("GET", path("bad id"), undefined, user.headers),
        yield* request("GET", path("aura:"), undefined, user.headers),
        yield* request("POST", "/api/auraid/resolve", { ids: [] }, user.headers),
        yield* request("POST", "/api/auraid/resolve", { ids: Array.from({ length: 101 }, (_, i) => `u${i}`) }, user.headers),
        yield* request("POST", "/api/auraid/resolve", { ids: ["ok", "not ok"] }, user.headers),
        yield* request("GET", "/api/auraid?email=not-an-email", undefined, user.headers),
        yield* request("GET", "/api/auraid?email=a%40b.c&phone=%2B15550000000", undefined, user.headers),
        yield* request("GET", "/api/auraid", undefined, user.headers)
      ]
      for (const res of bad) assert.strictEqual(res.status, 400, res.text)
      assert.strictEqual([...fake.calls.values()].reduce((a, b) => a + b, 0), 0)
    }))

  it.effect("counts cache hits and misses by level and upstream calls; /status has an auraid section", () =>
    Effect.gen(function*() {
      const metrics = yield* request("GET", "/metrics")
      assert.include(metrics.text, "auralink_auraid_cache_requests_total{level=\"memory\",result=\"hit\"}")
      assert.include(metrics.text, "auralink_auraid_cache_requests_total{level=\"store\",result=\"miss\"}")
      assert.include(metrics.text, "auralink_auraid_upstream_calls_total{operation=\"get\",result=\"ok\"}")
      const sections = yield* Health.use((h) => h.sections)
      const auraid = record(sections["auraid"])
      assert.strictEqual(auraid["enabled"], true)
      assert.isAbove(Number(record(auraid["memory"])["hits"]), 0)
      assert.isNumber(record(auraid["store"])["hitRate"])
    }))

  it.effect("gRPC AuraIdService answers as REST: redaction, batch, reverse lookup, NOT_FOUND, INVALID_ARGUMENT, UNAUTHENTICATED", () =>
    Effect.gen(function*() {
      const client = yield* clientFor
      const [id, other] = [unique("grpc"), unique("grpc-other")]
      const person = identity(id)
      yield* given(person, identity(other))
      const stranger = { token: (yield* signIn(unique("stranger"))).token }
      const self = { token: (yield* signIn(id)).token }
      const seen = yield* auraIdRpc.rpc(client, "Resolve", { auraId: id }, stranger)
      assert.deepInclude(seen, { auraId: person.auraId, displayName: person.displayName, verified: true, privacy: "contacts", stale: false, redacted: true })
      assert.isUndefined(seen["email"])
      assert.deepInclude(yield* auraIdRpc.rpc(client, "Resolve", { auraId: person.auraId }, self), {
        email: person.email,
        phone: person.phone,
        redacted: false
      })
      const batch = yield* auraIdRpc.rpc(client, "ResolveBatch", { auraIds: [id, other, person.auraId, unique("none")] }, stranger)
      assert.deepStrictEqual(list(batch["results"]).map((r) => record(r)["auraId"]), [person.auraId, `aura:${other}`])
      assert.strictEqual(list(batch["missing"]).length, 1)
      assert.deepInclude(yield* auraIdRpc.rpc(client, "FindByContact", { phone: person.phone }, self), { auraId: person.auraId, phone: person.phone })
      assertStatus(yield* codeOf(auraIdRpc.rpc(client, "Resolve", { auraId: unique("none") }, stranger)), grpc.status.NOT_FOUND)
      assertStatus(yield* codeOf(auraIdRpc.rpc(client, "Resolve", { auraId: "bad id" }, stranger)), grpc.status.INVALID_ARGUMENT, "aura_id")
      assertStatus(yield* codeOf(auraIdRpc.rpc(client, "FindByContact", {}, stranger)), grpc.status.INVALID_ARGUMENT)
      const tooMany = Array.from({ length: 101 }, (_, i) => `u${i}`)
      assertStatus(yield* codeOf(auraIdRpc.rpc(client, "ResolveBatch", { auraIds: tooMany }, stranger)), grpc.status.INVALID_ARGUMENT, "aura_ids")
      assertStatus(yield* codeOf(auraIdRpc.rpc(client, "Resolve", { auraId: id })), grpc.status.UNAUTHENTICATED)
    }))
})
