import { afterAll, assert, layer } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import { Effect, Layer } from "effect"
import { PARTICIPANT_SERVICE, ParticipantGrpcLive } from "../../src/adapters/grpc/participants.ts"
import { ROOM_SERVICE, RoomGrpcLive } from "../../src/adapters/grpc/rooms.ts"
import { SessionGrpcLive } from "../../src/adapters/grpc/sessions.ts"
import { LIVEKIT_WEBHOOK_PATH } from "../../src/adapters/http/livekit-webhook.ts"
import { ApiRoutes } from "../../src/adapters/http/routes.ts"
import { GrpcServer } from "../../src/layers/GrpcServer.ts"
import { serveHttp } from "../../src/layers/HttpServer.ts"
import { stateKey } from "../../src/layers/participants/records.ts"
import { StateStore } from "../../src/layers/StateStore.ts"
import { TokenSigner } from "../../src/layers/Tokens.ts"
import { recordMeasuredQos } from "../../src/programs/participants/record-measured-qos.ts"
import { ParticipantIdentity, SessionId } from "../../src/schemas/ids.ts"
import { JWT_SECRET, list, PROVISIONING_KEY, record, registerDevice, request, signIn } from "../support/auth.ts"
import { Fake, fakeLiveKitLayer, liveKitEnv, SEED_CAPABILITIES, SEED_QOS } from "../support/livekit.ts"
import { assertStatus, type Caller, clientFor, codeOf, serviceClient } from "../support/grpc-client.ts"
import { baseUrl, capturedLogs } from "../support/http.ts"
import { deleteKeys, eventually, REDIS_URL, runPrefix } from "../support/redis.ts"
import { onFreshDatabase } from "../support/server.ts"

const API_KEY = "rooms-grpc-test-key"
const API_SECRET = "rooms-grpc-test-secret-0123456789abcdef"
const PREFIX = `${runPrefix()}:`
const logs = capturedLogs()

afterAll(() => deleteKeys(`${PREFIX}*`))

const FakeLayer = fakeLiveKitLayer(API_KEY, API_SECRET)

/** REST and gRPC over one build, as in main.ts; rooms change by webhook only (the poll is an hour apart). */
const Server = Layer.unwrap(Fake.use((fake) =>
  Effect.succeed(
    onFreshDatabase(
      Layer.mergeAll(
        serveHttp(ApiRoutes, 0, "127.0.0.1"),
        Layer.mergeAll(SessionGrpcLive, RoomGrpcLive, ParticipantGrpcLive).pipe(Layer.provideMerge(GrpcServer.layer))
      ),
      {
        REDIS_URL,
        REDIS_KEY_PREFIX: PREFIX,
        JWT_SECRET,
        AUTH_PROVISIONING_KEY: PROVISIONING_KEY,
        ...liveKitEnv(fake, API_KEY, API_SECRET),
        ROOM_SYNC_INTERVAL_MS: "3600000",
        ROOM_STALE_CLEANUP_INTERVAL_MS: "3600000",
        RATE_LIMIT_DEFAULT_PER_MINUTE: "100000",
        RATE_LIMIT_AUTH_PER_MINUTE: "100000",
        RATE_LIMIT_SESSION_PER_MINUTE: "100000"
      }
    )
  )
)).pipe(Layer.provideMerge(FakeLayer), Layer.provide(logs.layer))

const rooms = serviceClient("rooms.proto", ROOM_SERVICE)
const participants = serviceClient("rooms.proto", PARTICIPANT_SERVICE)
const health = serviceClient("health.proto", "grpc.health.v1.Health")

const unique = (name: string) => `${name}-${crypto.randomUUID().slice(0, 8)}`

/** The fake delivers webhooks to this service. */
const deliverHere = Effect.gen(function*() {
  const fake = yield* Fake
  const url = `${yield* baseUrl}${LIVEKIT_WEBHOOK_PATH}`
  if (!fake.webhookUrls.includes(url)) fake.webhookUrls.push(url)
  return fake
})

/** A proto-loader message without its "_<name>" markers of set `optional` fields (they are not data). */
const data = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(data)
  if (typeof value !== "object" || value === null) return value
  return Object.fromEntries(Object.entries(value).filter(([key]) => !key.startsWith("_")).map(([key, v]) => [key, data(v)]))
}

/** A proto Room as REST answers it: finished_at "" is null, an absent media_state null. */
const asRestDetail = (room: Record<string, unknown>) => ({
  ...record(data(room)),
  finishedAt: room["finishedAt"] || null,
  mediaState: room["mediaState"] ?? null
})
const asRestSummary = (room: unknown) => {
  const { finishedAt: _finished, participants: _participants, ...summary } = record(data(room))
  return summary
}

/** A proto QosSample as REST answers it: an absent rtt_ms is null. */
const asRestSample = (sample: unknown) => ({ ...record(data(sample)), rttMs: record(sample)["rttMs"] ?? null })

/** A proto ParticipantState as REST answers it: absent sub-messages are null. */
const asRestState = (state: Record<string, unknown>) => ({
  ...record(data(state)),
  capabilities: data(state["capabilities"] ?? null),
  qos: state["qos"] === undefined ? null : asRestSample(state["qos"]),
  presence: data(state["presence"] ?? null)
})

/** An operator-scoped token (no endpoint issues one, so it is signed here, as the REST tests do). */
const operator = Effect.gen(function*() {
  const id = unique("operator")
  const device = yield* registerDevice(id)
  const signed = yield* TokenSigner.use((s) => s.sign({ userId: id, deviceId: device.deviceId, scope: "session operator" }))
  return { token: signed.token }
})

/** What the owner reads of a participant over gRPC: state (its presence clock left out) and the whole history. */
const snapshot = (client: grpc.Client, identity: string, caller: Caller) =>
  Effect.gen(function*() {
    const state = yield* participants.rpc(client, "GetParticipant", { identity }, caller)
    const history = yield* participants.rpc(client, "GetQosHistory", { identity, limit: 100 }, caller)
    return { state: { ...state, presence: { ...record(state["presence"]), status: "-" } }, history }
  })

layer(Server, { timeout: 120_000, excludeTestServices: true })("gRPC RoomService and ParticipantService", (it) => {
  it.effect("health checks answer for both services of rooms.proto", () =>
    Effect.gen(function*() {
      const client = yield* clientFor
      for (const service of [ROOM_SERVICE, PARTICIPANT_SERVICE]) {
        assert.strictEqual((yield* health.rpc(client, "Check", { service }))["status"], "SERVING", service)
      }
    }))

  it.effect("ListRooms and GetRoom answer what REST answers; NOT_FOUND, INVALID_ARGUMENT naming name, UNAUTHENTICATED", () =>
    Effect.gen(function*() {
      const fake = yield* deliverHere
      const client = yield* clientFor
      const reader = yield* signIn(unique("reader"))
      const caller = { token: reader.token }
      const name = unique("conference")
      yield* Effect.promise(() => fake.addRoom(name, { metadata: "{\"topic\":\"demo\"}", notify: true }))
      yield* Effect.promise(() => fake.join(name, "ada", { name: "Ada", notify: true }))
      yield* Effect.promise(() => fake.publishTrack(name, "ada", { kind: "audio", notify: true }))
      yield* Effect.promise(() => fake.addRoom(unique("other"), { notify: true }))

      const rest = yield* request("GET", `/api/rooms/${encodeURIComponent(name)}`, undefined, reader.headers)
      assert.strictEqual(rest.status, 200, rest.text)
      const got = yield* rooms.rpc(client, "GetRoom", { name }, caller)
      assert.deepStrictEqual(asRestDetail(got), rest.json)
      assert.isFalse("mediaState" in got)
      const ada = record(list(got["participants"])[0])
      assert.strictEqual(ada["name"], "Ada")
      assert.deepInclude(record(list(ada["tracks"])[0]), { kind: "audio", mimeType: "audio/opus", muted: false })

      const restList = yield* request("GET", "/api/rooms", undefined, reader.headers)
      const listed = yield* rooms.rpc(client, "ListRooms", {}, caller)
      assert.lengthOf(list(listed["rooms"]), 2)
      assert.deepStrictEqual(list(listed["rooms"]).map(asRestSummary), restList.json["rooms"])
      assert.isTrue(list(listed["rooms"]).every((r) => record(r)["finishedAt"] === "" && list(record(r)["participants"]).length === 0))

      assertStatus(yield* codeOf(rooms.rpc(client, "GetRoom", { name: unique("nowhere") }, caller)), grpc.status.NOT_FOUND)
      for (const bad of ["", "x".repeat(300), "a\u0007b"]) {
        assertStatus(yield* codeOf(rooms.rpc(client, "GetRoom", { name: bad }, caller)), grpc.status.INVALID_ARGUMENT, "name")
      }
      assertStatus(yield* codeOf(rooms.rpc(client, "ListRooms", {})), grpc.status.UNAUTHENTICATED)
      assertStatus(yield* codeOf(rooms.rpc(client, "GetRoom", { name }, { token: "not-a-jwt" })), grpc.status.UNAUTHENTICATED)
      assert.strictEqual((yield* rooms.watch(client, "WatchRooms", {}).ended).code, grpc.status.UNAUTHENTICATED)
      const badWatch = yield* rooms.watch(client, "WatchRooms", { room: "a\u0007b" }, caller).ended
      assert.strictEqual(badWatch.code, grpc.status.INVALID_ARGUMENT, badWatch.details)
      assert.include(badWatch.details, "room")
    }))

  it.effect("WatchRooms streams the joins and leaves LiveKit sends by webhook, of one room when room is set", () =>
    Effect.gen(function*() {
      const fake = yield* deliverHere
      const client = yield* clientFor
      const reader = yield* signIn(unique("watcher"))
      const caller = { token: reader.token }
      const watched = unique("watched")
      const elsewhere = unique("elsewhere")
      yield* Effect.promise(() => fake.addRoom(watched, { notify: true }))
      yield* Effect.promise(() => fake.addRoom(elsewhere, { notify: true }))
      const all = rooms.watch(client, "WatchRooms", {}, caller)
      const one = rooms.watch(client, "WatchRooms", { room: watched }, caller)

      // The client cannot see when the server has subscribed: probe joins until both streams carry one.
      for (let i = 0; all.messages.length === 0 || one.messages.length === 0; i++) {
        assert.isBelow(i, 100, "the watches never started")
        yield* Effect.promise(() => fake.join(watched, `probe-${i}`, { notify: true }))
        yield* Effect.sleep("50 millis")
      }

      yield* Effect.promise(() => fake.join(watched, "ada", { notify: true }))
      yield* Effect.promise(() => fake.join(elsewhere, "bob", { notify: true }))
      yield* Effect.promise(() => fake.leave(watched, "ada", { notify: true }))
      yield* Effect.promise(() => fake.leave(elsewhere, "bob", { notify: true }))

      const of = (messages: ReadonlyArray<Record<string, unknown>>) =>
        messages.filter((m) => m["identity"] === "ada" || m["identity"] === "bob").map((m) => [m["type"], m["room"], m["identity"]].map(String).join(" "))
      const expected = [
        `participant_joined ${watched} ada`,
        `participant_joined ${elsewhere} bob`,
        `participant_left ${watched} ada`,
        `participant_left ${elsewhere} bob`
      ]
      yield* eventually(Effect.sync(() => of(all.messages).length === 4 && of(one.messages).length === 2))
      assert.deepStrictEqual(of(all.messages), expected)
      assert.deepStrictEqual(of(one.messages), [expected[0], expected[2]])
      assert.isTrue(one.messages.every((m) => m["room"] === watched), JSON.stringify(one.messages))
      const joined = all.messages.find((m) => m["identity"] === "ada")
      assert.deepInclude(joined, { source: "webhook", trackSid: "" })
      assert.isAbove(Number(joined?.["atMs"]), Date.now() - 60_000)

      all.cancel()
      one.cancel()
      assert.strictEqual((yield* all.ended).code, grpc.status.CANCELLED)
      assert.strictEqual((yield* one.ended).code, grpc.status.CANCELLED)
    }))

  it.effect("a device writes and reads its own capabilities, QoS (MOS computed) and presence; REST reads the same", () =>
    Effect.gen(function*() {
      const client = yield* clientFor
      const alice = yield* signIn(unique("alice"))
      const caller = { token: alice.token }
      const identity = alice.userId

      const caps = yield* participants.rpc(client, "UpdateCapabilities", { identity, capabilities: SEED_CAPABILITIES }, caller)
      assert.strictEqual(caps["identity"], identity)
      assert.deepStrictEqual(caps["capabilities"], SEED_CAPABILITIES)
      assert.isFalse("qos" in caps)
      assert.deepInclude(record(caps["presence"]), { status: "active", setStatus: "active" })

      // No MOS in the report: the E-model's (2.5 % loss, 15 ms jitter, 45 ms RTT: 4.127 -> 4.13).
      const computed = yield* participants.rpc(client, "ReportQos", { identity, qos: SEED_QOS }, caller)
      assert.deepInclude(computed, { ...SEED_QOS, mosScore: 4.13, mosSource: "e-model", source: "reported" })
      assert.isFalse("sessionId" in computed)
      const reported = yield* participants.rpc(client, "ReportQos", { identity, qos: { ...SEED_QOS, mosScore: 4.1 } }, caller)
      assert.deepInclude(reported, { mosScore: 4.1, mosSource: "reported" })

      const away = yield* participants.rpc(client, "UpdatePresence", { identity, status: "away" }, caller)
      assert.deepInclude(away, { status: "away", setStatus: "away" })
      assert.hasAllKeys(away, ["status", "setStatus", "updatedAt", "lastSeenAt"])

      const state = yield* participants.rpc(client, "GetParticipant", { identity }, caller)
      assert.deepStrictEqual(state["capabilities"], SEED_CAPABILITIES)
      assert.deepStrictEqual(data(state["qos"]), data(reported))
      assert.deepInclude(record(state["presence"]), { status: "away", setStatus: "away", updatedAt: away["updatedAt"] })
      const restState = yield* request("GET", `/api/participants/${encodeURIComponent(identity)}`, undefined, alice.headers)
      assert.deepStrictEqual(asRestState(state), restState.json)

      const history = yield* participants.rpc(client, "GetQosHistory", { identity }, caller)
      assert.strictEqual(history["identity"], identity)
      assert.deepStrictEqual(data(history["samples"]), data([reported, computed]))
      assert.deepStrictEqual(data((yield* participants.rpc(client, "GetQosHistory", { identity, limit: 1 }, caller))["samples"]), data([reported]))
      const restHistory = yield* request("GET", `/api/participants/${encodeURIComponent(identity)}/qos`, undefined, alice.headers)
      assert.deepStrictEqual(list(history["samples"]).map(asRestSample), restHistory.json["samples"])

      // A sample this service measured without a round trip: rtt_ms absent, session_id set.
      const sessionId = SessionId.make(crypto.randomUUID())
      yield* recordMeasuredQos({ identity: ParticipantIdentity.make(identity), sessionId, packetLossPercent: 1, jitterMs: 5, rttMs: null, bandwidthKbps: 800 })
      const measured = record((yield* participants.rpc(client, "GetParticipant", { identity }, caller))["qos"])
      assert.deepInclude(measured, { source: "measured", mosSource: "e-model", sessionId, packetLossPercent: 1 })
      assert.isFalse("rttMs" in measured, JSON.stringify(measured))
      const restMeasured = yield* request("GET", `/api/participants/${encodeURIComponent(identity)}`, undefined, alice.headers)
      assert.deepStrictEqual(asRestSample(measured), restMeasured.json["qos"])
    }))

  it.effect("another user's device gets PERMISSION_DENIED and changes nothing; an operator reads (and writes) any", () =>
    Effect.gen(function*() {
      const client = yield* clientFor
      const owner = yield* signIn(unique("owner"))
      const stranger = yield* signIn(unique("stranger"))
      const identity = owner.userId
      const mine = { token: owner.token }
      yield* participants.rpc(client, "UpdateCapabilities", { identity, capabilities: SEED_CAPABILITIES }, mine)
      yield* participants.rpc(client, "ReportQos", { identity, qos: SEED_QOS }, mine)
      const before = yield* snapshot(client, identity, mine)

      const calls = (id: string) =>
        [
          ["GetParticipant", { identity: id }],
          ["UpdateCapabilities", { identity: id, capabilities: { ...SEED_CAPABILITIES, maxFrameRate: 60 } }],
          ["ReportQos", { identity: id, qos: { ...SEED_QOS, packetLossPercent: 50 } }],
          ["GetQosHistory", { identity: id }],
          ["UpdatePresence", { identity: id, status: "offline" }]
        ] as const
      for (const [name, body] of calls(identity)) {
        assertStatus(yield* codeOf(participants.rpc(client, name, body, { token: stranger.token })), grpc.status.PERMISSION_DENIED, "operator")
        assertStatus(yield* codeOf(participants.rpc(client, name, body)), grpc.status.UNAUTHENTICATED)
      }
      // A stranger cannot tell a known identity from an unknown one.
      for (const [name, body] of calls(unique("nobody"))) {
        assertStatus(yield* codeOf(participants.rpc(client, name, body, { token: stranger.token })), grpc.status.PERMISSION_DENIED)
      }
      assert.deepStrictEqual(yield* snapshot(client, identity, mine), before)

      const op = yield* operator
      const read = yield* participants.rpc(client, "GetParticipant", { identity }, op)
      assert.deepStrictEqual(read["capabilities"], SEED_CAPABILITIES)
      assert.lengthOf(list((yield* participants.rpc(client, "GetQosHistory", { identity }, op))["samples"]), 1)
      assert.strictEqual((yield* participants.rpc(client, "UpdatePresence", { identity, status: "idle" }, op))["setStatus"], "idle")
      assert.strictEqual(record((yield* participants.rpc(client, "GetParticipant", { identity }, mine))["presence"])["setStatus"], "idle")

      // NOT_FOUND only after the access check: for the operator, or one's own unknown identity.
      assertStatus(yield* codeOf(participants.rpc(client, "GetParticipant", { identity: unique("ghost") }, op)), grpc.status.NOT_FOUND)
      assertStatus(yield* codeOf(participants.rpc(client, "GetQosHistory", { identity: stranger.userId }, { token: stranger.token })), grpc.status.NOT_FOUND)
    }))

  it.effect("bad input is INVALID_ARGUMENT naming the proto field; nothing changes", () =>
    Effect.gen(function*() {
      const client = yield* clientFor
      const bob = yield* signIn(unique("bob"))
      const caller = { token: bob.token }
      const identity = bob.userId
      yield* participants.rpc(client, "UpdateCapabilities", { identity, capabilities: SEED_CAPABILITIES }, caller)
      yield* participants.rpc(client, "ReportQos", { identity, qos: SEED_QOS }, caller)
      const before = yield* snapshot(client, identity, caller)

      const cases: ReadonlyArray<readonly [string, object, string]> = [
        ["UpdateCapabilities", { identity }, "capabilities"],
        ["UpdateCapabilities", { identity, capabilities: { ...SEED_CAPABILITIES, maxResolution: "huge" } }, "capabilities.max_resolution"],
        ["UpdateCapabilities", { identity, capabilities: { ...SEED_CAPABILITIES, maxFrameRate: 0 } }, "capabilities.max_frame_rate"],
        ["UpdateCapabilities", { identity, capabilities: { ...SEED_CAPABILITIES, maxBitrate: 0 } }, "capabilities.max_bitrate"],
        ["UpdateCapabilities", { identity, capabilities: { ...SEED_CAPABILITIES, videoCodecs: ["H 264"] } }, "capabilities.video_codecs.0"],
        ["UpdateCapabilities", { identity, capabilities: { ...SEED_CAPABILITIES, audioCodecs: Array(17).fill("Opus") } }, "capabilities.audio_codecs"],
        ["ReportQos", { identity }, "qos"],
        ["ReportQos", { identity, qos: { ...SEED_QOS, packetLossPercent: 150 } }, "qos.packet_loss_percent"],
        ["ReportQos", { identity, qos: { ...SEED_QOS, jitterMs: -1 } }, "qos.jitter_ms"],
        ["ReportQos", { identity, qos: { ...SEED_QOS, rttMs: 70_000 } }, "qos.rtt_ms"],
        ["ReportQos", { identity, qos: { ...SEED_QOS, bandwidthKbps: Number.NaN } }, "qos.bandwidth_kbps"],
        ["ReportQos", { identity, qos: { ...SEED_QOS, mosScore: 7 } }, "qos.mos_score"],
        ["UpdatePresence", { identity, status: "busy" }, "status"],
        ["UpdatePresence", { identity }, "status"],
        ["GetQosHistory", { identity, limit: 10_001 }, "limit"],
        ["GetParticipant", {}, "identity"],
        ["GetParticipant", { identity: "bad\u0001identity" }, "identity"],
        ["UpdatePresence", { identity: "x".repeat(257), status: "idle" }, "identity"]
      ]
      for (const [name, body, field] of cases) {
        const error = yield* codeOf(participants.rpc(client, name, body, caller))
        assertStatus(error, grpc.status.INVALID_ARGUMENT, `${field}: `)
      }
      assert.deepStrictEqual(yield* snapshot(client, identity, caller), before)
    }))

  it.effect("a corrupt stored value is INTERNAL with nothing of its cause, and logged", () =>
    Effect.gen(function*() {
      const client = yield* clientFor
      const cy = yield* signIn(unique("cy"))
      yield* (yield* StateStore).namespace("participants").hset(stateKey(cy.userId), { capabilities: "{not json" })
      const error = yield* codeOf(participants.rpc(client, "GetParticipant", { identity: cy.userId }, { token: cy.token }))
      assertStatus(error, grpc.status.INTERNAL)
      assert.strictEqual(error.details, "Internal error")
      const logged = logs.lines.find((l) => l["event"] === "grpc_internal_error" && l["method"] === "GetParticipant")
      assert.isDefined(logged)
      assert.include(JSON.stringify(logged), "ParticipantStoreError")
    }))
})
