import { afterAll, assert, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { ApiRoutes } from "../../src/adapters/http/routes.ts"
import { serveHttp } from "../../src/layers/HttpServer.ts"
import { JWT_SECRET, list, PROVISIONING_KEY, record, request, signIn } from "../support/auth.ts"
import { FakeCommunicationService } from "../support/fake-communication-service.ts"
import { Fake, fakeLiveKitLayer, liveKitEnv } from "../support/livekit.ts"
import { deleteKeys, REDIS_URL, runPrefix } from "../support/redis.ts"
import { onFreshDatabase } from "../support/server.ts"
import { startedFake } from "../support/fake-server.ts"

const RUN = runPrefix()
const API_KEY = "auraid-rooms-key"
const LIVEKIT_KEY = "auraid-rooms-livekit"
const LIVEKIT_SECRET = "auraid-rooms-secret-0123456789abcdef"

class Communication extends Context.Service<Communication, FakeCommunicationService>()("test/AuraIdRoomsCommunication") {}

const CommunicationLayer = Layer.effect(
  Communication,
  startedFake(() => new FakeCommunicationService({ apiKey: API_KEY }))
)

const Server = Layer.unwrap(Effect.gen(function*() {
  const livekit = yield* Fake
  const communication = yield* Communication
  return onFreshDatabase(serveHttp(ApiRoutes, 0, "127.0.0.1"), {
    REDIS_URL,
    REDIS_KEY_PREFIX: `${RUN}:`,
    JWT_SECRET,
    AUTH_PROVISIONING_KEY: PROVISIONING_KEY,
    ...liveKitEnv(livekit, LIVEKIT_KEY, LIVEKIT_SECRET),
    ROOM_SYNC_INTERVAL_MS: "300",
    COMMUNICATION_SERVICE_URL: communication.url,
    COMMUNICATION_SERVICE_API_KEY: API_KEY,
    RATE_LIMIT_DEFAULT_PER_MINUTE: "100000",
    RATE_LIMIT_AUTH_PER_MINUTE: "100000",
    RATE_LIMIT_SESSION_PER_MINUTE: "100000"
  })
})).pipe(Layer.provideMerge(Layer.mergeAll(fakeLiveKitLayer(LIVEKIT_KEY, LIVEKIT_SECRET), CommunicationLayer)))

afterAll(() => deleteKeys(`${RUN}:*`))

const sleep = (ms: number) => Effect.promise(() => new Promise((resolve) => setTimeout(resolve, ms)))

layer(Server, { timeout: 60_000, excludeTestServices: true })("room participants with AuraIDs", (it) => {
  it.effect("GET /api/rooms/:name gives AuraID participants their display name and verified flag", () =>
    Effect.gen(function*() {
      const livekit = yield* Fake
      const communication = yield* Communication
      const room = `room-${RUN}`
      const known = `aura:known-${RUN}`
      communication.put({ auraId: known, displayName: "Known Person", email: "k@example.com", phone: null, verified: true, privacy: "public" })
      yield* Effect.promise(() => livekit.addRoom(room))
      for (const identity of [known, `aura:unknown-${RUN}`, `plain-${RUN}`]) yield* Effect.promise(() => livekit.join(room, identity))
      const reader = yield* signIn(`reader-${RUN}`)
      let participants: ReadonlyArray<Record<string, unknown>> = []
      for (let i = 0; i < 100 && participants.length < 3; i++) {
        yield* sleep(100)
        const res = yield* request("GET", `/api/rooms/${room}`, undefined, reader.headers)
        participants = res.status === 200 ? list(res.json["participants"]).map(record) : []
      }
      assert.strictEqual(participants.length, 3)
      const byIdentity = new Map(participants.map((p) => [p["identity"], p]))
      assert.deepInclude(byIdentity.get(known) ?? {}, { displayName: "Known Person", verified: true })
      assert.notProperty(byIdentity.get(`aura:unknown-${RUN}`) ?? {}, "displayName")
      assert.notProperty(byIdentity.get(`plain-${RUN}`) ?? {}, "verified")
      assert.notProperty(byIdentity.get(known) ?? {}, "email")
      // Batched, and only identities that are AuraIDs are asked about.
      assert.strictEqual(communication.callCount("get"), 0)
      assert.isAtLeast(communication.callCount("batch"), 1)
      assert.notInclude(communication.batchedIds, `plain-${RUN}`)
    }))
})
