import { assert, layer } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import { loadSync, type MethodDefinition } from "@grpc/proto-loader"
import { Effect, Layer, Option, Schedule } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import { Redis as IORedis } from "ioredis"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { loadProto, protoOptions } from "../../src/layers/grpc/proto.ts"
import { GrpcServer } from "../../src/layers/GrpcServer.ts"
import { ApiRoutes } from "../../src/adapters/http/routes.ts"
import { serveHttp } from "../../src/layers/HttpServer.ts"
import { channelOf } from "../../src/layers/sessions/events.ts"
import { StateStore } from "../../src/layers/StateStore.ts"
import { activateSession } from "../../src/programs/sessions/activate.ts"
import { SESSION_SERVICE, SessionGrpcLive } from "../../src/adapters/grpc/sessions.ts"
import { SessionId } from "../../src/schemas/ids.ts"
import { JWT_SECRET, list, PROVISIONING_KEY, record, request, signIn, str } from "../support/auth.ts"
import { onFreshDatabase } from "../support/server.ts"
import { assertStatus, type Caller, clientFor, codeOf, metadataOf, methodOf, serviceClient } from "../support/grpc-client.ts"
import { capturedLogs } from "../support/http.ts"
import { REDIS_URL } from "../support/redis.ts"

const logs = capturedLogs()

/**
 * REST and gRPC over one build, composed as in main.ts: SharedServices (the session store and
 * cache, auth services, rate limiter) built once below both listeners, and visible to the tests.
 */
const server = (env: Record<string, string> = {}) =>
  onFreshDatabase(
    Layer.mergeAll(serveHttp(ApiRoutes, 0, "127.0.0.1"), SessionGrpcLive.pipe(Layer.provideMerge(GrpcServer.layer))),
    {
      REDIS_URL,
      JWT_SECRET,
      AUTH_PROVISIONING_KEY: PROVISIONING_KEY,
      SESSION_SWEEP_INTERVAL_MS: "3600000",
      RATE_LIMIT_AUTH_PER_MINUTE: "100000",
      RATE_LIMIT_SESSION_PER_MINUTE: "100000",
      RATE_LIMIT_DEFAULT_PER_MINUTE: "100000",
      ...env
    }
  ).pipe(Layer.provide(logs.layer))

// ---- a real grpc-js client -------------------------------------------------------------------

const sessions = serviceClient("session.proto", SESSION_SERVICE)
const { method, rpc } = sessions
const watch = (client: grpc.Client, sessionId: string, caller: Caller = {}) => sessions.watch(client, "WatchSession", { sessionId }, caller)

/** Retries `probe` every 20 ms until it holds (up to 5 s). */
const eventually = <R>(probe: Effect.Effect<boolean, never, R>) =>
  probe.pipe(
    Effect.flatMap((ok) => ok ? Effect.void : Effect.fail("not yet")),
    Effect.retry(Schedule.spaced("20 millis")),
    Effect.timeout("5 seconds"),
    Effect.orDie
  )

/** Local subscribers of a session's change channel, as Redis counts them (1 while someone watches). */
const subscribers = (id: string) =>
  Effect.gen(function*() {
    const channel = (yield* StateStore).prefix + channelOf(id)
    const redis = new IORedis(REDIS_URL)
    try {
      const reply = yield* Effect.promise(() => redis.pubsub("NUMSUB", channel))
      return Number(reply[1])
    } finally {
      redis.disconnect()
    }
  })

const reflectionPkg = loadSync(
  join(dirname(createRequire(import.meta.url).resolve("@grpc/reflection")), "../proto/grpc/reflection/v1/reflection.proto"),
  protoOptions
)
const healthPkg = loadProto("health.proto")

/** One request on a generic client to a method of another package (reflection, health). */
const firstReply = (client: grpc.Client, definition: MethodDefinition<object, object>, body: object) =>
  Effect.callback<Record<string, unknown>, grpc.ServiceError>((resume) => {
    if (definition.requestStream) {
      const call = client.makeBidiStreamRequest(definition.path, definition.requestSerialize, definition.responseDeserialize)
      call.on("data", (message: object) => (resume(Effect.succeed(record(message))), call.end()))
      call.on("error", (error: grpc.ServiceError) => resume(Effect.fail(error)))
      call.write(body)
    } else {
      client.makeUnaryRequest(
        definition.path,
        definition.requestSerialize,
        definition.responseDeserialize,
        body,
        (error, value) => resume(error === null ? Effect.succeed(record(value)) : Effect.fail(error))
      )
    }
  })

const user = (name: string) => `${name}-${crypto.randomUUID().slice(0, 8)}`
const sessionIdOf = (message: Record<string, unknown>) => SessionId.make(str(message["id"]))

// ---- stored rows, for parity ---------------------------------------------------------------

/** The row without what differs by nature (ids, times, user, device). */
const storedRow = (id: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient
    const rows = yield* sql<{ state: string; config: unknown; context: unknown; error: string | null; started: boolean; ended: boolean }>`
      SELECT state, config, context, error, started_at IS NOT NULL AS started, ended_at IS NOT NULL AS ended
      FROM sessions WHERE id = ${id}`
    return rows[0]
  }).pipe(Effect.orDie)

/** The event sequence, the owner's actor replaced by "owner" (it names the user and device). */
const storedEvents = (id: string, owner: { readonly userId: string; readonly deviceId: string }) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient
    const actor = `user:${owner.userId}/device:${owner.deviceId}`
    const rows = yield* sql<{ from_state: string | null; to_state: string; actor: string; reason: string }>`
      SELECT from_state, to_state, actor, reason FROM session_events WHERE session_id = ${id} ORDER BY id`
    return rows.map((r) => ({ from: r.from_state, to: r.to_state, actor: r.actor === actor ? "owner" : r.actor, reason: r.reason }))
  }).pipe(Effect.orDie)

layer(server(), { timeout: 120_000, excludeTestServices: true })("gRPC SessionService", (it) => {
  it.effect("every RPC's happy path, in the proto shape", () =>
    Effect.gen(function*() {
      const client = yield* clientFor
      const alice = yield* signIn(user("alice"))
      const caller = { token: alice.token }

      const defaults = yield* rpc(client, "StartSession", {}, caller)
      assert.strictEqual(defaults["state"], "pending")
      assert.deepInclude(record(defaults["config"]), {
        sampleRate: 16000,
        channels: 1,
        encoding: "s16le",
        language: "en-US",
        asrOptionsJson: "{}",
        aic: true,
        idleTimeoutSeconds: 300
      })

      const started = yield* rpc(client, "StartSession", {
        config: { sampleRate: 48000, encoding: "opus", language: "de-DE", asrOptionsJson: "{\"model\":\"fast\",\"beam\":4}" }
      }, caller)
      const id = sessionIdOf(started)
      assert.include(started, { state: "pending", userId: alice.userId, deviceId: alice.deviceId, startedAt: "", endedAt: "", error: "" })
      assert.isNotEmpty(str(started["createdAt"]))
      assert.isNotEmpty(str(started["expiresAt"]))
      assert.deepInclude(record(started["config"]), { sampleRate: 48000, encoding: "opus", language: "de-DE", channels: 1 })
      assert.deepStrictEqual(JSON.parse(str(record(started["config"])["asrOptionsJson"])), { model: "fast", beam: 4 })

      const got = yield* rpc(client, "GetSession", { sessionId: id }, caller)
      assert.deepStrictEqual(got, started)

      const updated = yield* rpc(client, "UpdateSessionConfig", { sessionId: id, config: { language: "fr-FR", aic: false } }, caller)
      // Only the given fields change.
      assert.deepInclude(record(updated["config"]), { language: "fr-FR", aic: false, sampleRate: 48000, encoding: "opus" })

      yield* activateSession(id)
      const stopped = yield* rpc(client, "StopSession", { sessionId: id }, caller)
      assert.strictEqual(stopped["state"], "completed")
      assert.isNotEmpty(str(stopped["startedAt"]))
      assert.isNotEmpty(str(stopped["endedAt"]))

      // Newest first; paging with the cursor; filter by state.
      const page = yield* rpc(client, "ListUserSessions", { limit: 1 }, caller)
      assert.deepStrictEqual(list(page["sessions"]).map(record).map(sessionIdOf), [id])
      const next = yield* rpc(client, "ListUserSessions", { limit: 1, cursor: str(page["nextCursor"]) }, caller)
      assert.deepStrictEqual(list(next["sessions"]).map(record).map(sessionIdOf), [sessionIdOf(defaults)])
      assert.strictEqual(next["nextCursor"], "")
      const pending = yield* rpc(client, "ListUserSessions", { state: "pending" }, caller)
      assert.deepStrictEqual(list(pending["sessions"]).map(record).map(sessionIdOf), [sessionIdOf(defaults)])
    }))

  it.effect("reflection lists the service and describes it; health checks answer for it", () =>
    Effect.gen(function*() {
      const client = yield* clientFor
      const reflect = methodOf(reflectionPkg, "grpc.reflection.v1.ServerReflection", "ServerReflectionInfo")
      const listed = yield* firstReply(client, reflect, { listServices: "*" })
      const names = list(record(listed["listServicesResponse"])["service"]).map((s) => record(s)["name"])
      assert.include(names, SESSION_SERVICE)
      const described = yield* firstReply(client, reflect, { fileContainingSymbol: SESSION_SERVICE })
      assert.isNotEmpty(list(record(described["fileDescriptorResponse"])["fileDescriptorProto"]))
      const health = yield* firstReply(client, methodOf(healthPkg, "grpc.health.v1.Health", "Check"), { service: SESSION_SERVICE })
      assert.strictEqual(health["status"], "SERVING")
    }))

  it.effect("WatchSession streams pending -> active -> completed, then ends", () =>
    Effect.gen(function*() {
      const client = yield* clientFor
      const bea = yield* signIn(user("bea"))
      const id = sessionIdOf(yield* rpc(client, "StartSession", {}, { token: bea.token }))
      const stream = watch(client, id, { token: bea.token })
      yield* eventually(Effect.sync(() => stream.messages.length === 1))
      yield* activateSession(id)
      yield* eventually(Effect.sync(() => stream.messages.length === 2))
      yield* rpc(client, "StopSession", { sessionId: id }, { token: bea.token })
      const status = yield* stream.ended
      assert.strictEqual(status.code, grpc.status.OK, status.details)
      assert.deepStrictEqual(stream.messages.map((m) => m["state"]), ["pending", "active", "completed"])
      assert.isTrue(stream.messages.every((m) => m["id"] === id))
      // The subscription went with the call.
      yield* eventually(Effect.map(subscribers(id), (n) => n === 0))

      // Watching an ended session: its state, then the end.
      const again = watch(client, id, { token: bea.token })
      assert.strictEqual((yield* again.ended).code, grpc.status.OK)
      assert.deepStrictEqual(again.messages.map((m) => m["state"]), ["completed"])

      // Errors end the stream with a status.
      const stranger = yield* signIn(user("bea-stranger"))
      assert.strictEqual((yield* watch(client, id, { token: stranger.token }).ended).code, grpc.status.PERMISSION_DENIED)
      assert.strictEqual((yield* watch(client, crypto.randomUUID(), { token: bea.token }).ended).code, grpc.status.NOT_FOUND)
      assert.strictEqual((yield* watch(client, id, {}).ended).code, grpc.status.UNAUTHENTICATED)
    }))

  it.effect("a client cancelling a watch interrupts the server side (its subscription ends)", () =>
    Effect.gen(function*() {
      const client = yield* clientFor
      const cat = yield* signIn(user("cat"))
      const id = sessionIdOf(yield* rpc(client, "StartSession", {}, { token: cat.token }))
      const stream = watch(client, id, { token: cat.token })
      yield* eventually(Effect.sync(() => stream.messages.length === 1))
      assert.strictEqual(yield* subscribers(id), 1)
      stream.cancel()
      assert.strictEqual((yield* stream.ended).code, grpc.status.CANCELLED)
      yield* eventually(Effect.map(subscribers(id), (n) => n === 0))
    }))

  it.effect("deadlines: one already past is DEADLINE_EXCEEDED; a watch is ended at its deadline", () =>
    Effect.gen(function*() {
      const client = yield* clientFor
      const dan = yield* signIn(user("dan"))
      const id = sessionIdOf(yield* rpc(client, "StartSession", {}, { token: dan.token }))
      const past = yield* codeOf(rpc(client, "GetSession", { sessionId: id }, { token: dan.token, options: { deadline: Date.now() - 1000 } }))
      assertStatus(past, grpc.status.DEADLINE_EXCEEDED)
      const stopPast = yield* codeOf(rpc(client, "StopSession", { sessionId: id }, { token: dan.token, options: { deadline: new Date(Date.now() - 1) } }))
      assertStatus(stopPast, grpc.status.DEADLINE_EXCEEDED)
      assert.strictEqual((yield* rpc(client, "GetSession", { sessionId: id }, { token: dan.token }))["state"], "pending")

      // A generous deadline changes nothing.
      const inTime = yield* rpc(client, "GetSession", { sessionId: id }, { token: dan.token, options: { deadline: Date.now() + 10_000 } })
      assert.strictEqual(inTime["state"], "pending")

      const stream = watch(client, id, { token: dan.token, options: { deadline: Date.now() + 400 } })
      const status = yield* stream.ended
      assert.strictEqual(status.code, grpc.status.DEADLINE_EXCEEDED, status.details)
      assert.deepStrictEqual(stream.messages.map((m) => m["state"]), ["pending"])
      yield* eventually(Effect.map(subscribers(id), (n) => n === 0))
    }))

  it.effect("authentication: no, malformed, forged or wrong-scheme tokens are UNAUTHENTICATED with one generic message", () =>
    Effect.gen(function*() {
      const client = yield* clientFor
      const eve = yield* signIn(user("eve"))
      const id = sessionIdOf(yield* rpc(client, "StartSession", {}, { token: eve.token }))
      const [header, payload] = eve.token.split(".")
      const callers: ReadonlyArray<Caller> = [
        {},
        { token: "" },
        { token: "not-a-jwt" },
        { token: `${header}.${payload}.forged-signature` },
        { authorization: eve.token }, // no scheme
        { authorization: `Basic ${eve.token}` },
        { authorization: `Bearer ${eve.token} extra` }
      ]
      for (const caller of callers) {
        for (const [name, body] of [["GetSession", { sessionId: id }], ["StartSession", {}], ["ListUserSessions", {}]] as const) {
          const error = yield* codeOf(rpc(client, name, body, caller))
          assertStatus(error, grpc.status.UNAUTHENTICATED)
          assert.strictEqual(error.details, "Invalid or expired access token", JSON.stringify(caller))
        }
      }
      // Nothing was started by the refused calls.
      const mine = yield* rpc(client, "ListUserSessions", {}, { token: eve.token })
      assert.lengthOf(list(mine["sessions"]), 1)
      // The scheme is case-insensitive, as in HTTP.
      assert.strictEqual((yield* rpc(client, "GetSession", { sessionId: id }, { authorization: `bearer ${eve.token}` }))["id"], id)
    }))

  it.effect("session caps as over REST: the ninth pending session of a device is RESOURCE_EXHAUSTED naming the limit", () =>
    Effect.gen(function*() {
      const client = yield* clientFor
      const ida = yield* signIn(user("ida"))
      for (let i = 0; i < 8; i++) yield* rpc(client, "StartSession", {}, { token: ida.token })
      assertStatus(yield* codeOf(rpc(client, "StartSession", {}, { token: ida.token })), grpc.status.RESOURCE_EXHAUSTED, "MAX_PENDING_SESSIONS_PER_DEVICE")
    }))

  it.effect("ownership and state errors: PERMISSION_DENIED, NOT_FOUND, FAILED_PRECONDITION naming both states", () =>
    Effect.gen(function*() {
      const client = yield* clientFor
      const fay = yield* signIn(user("fay"))
      const gus = yield* signIn(user("gus"))
      const id = sessionIdOf(yield* rpc(client, "StartSession", {}, { token: fay.token }))
      for (
        const [name, body] of [
          ["GetSession", { sessionId: id }],
          ["StopSession", { sessionId: id }],
          ["UpdateSessionConfig", { sessionId: id, config: { language: "fr" } }]
        ] as const
      ) {
        assertStatus(yield* codeOf(rpc(client, name, body, { token: gus.token })), grpc.status.PERMISSION_DENIED)
        assertStatus(yield* codeOf(rpc(client, name, { ...body, sessionId: crypto.randomUUID() }, { token: fay.token })), grpc.status.NOT_FOUND)
      }
      assertStatus(yield* codeOf(rpc(client, "GetSession", { sessionId: "not-a-uuid" }, { token: fay.token })), grpc.status.INVALID_ARGUMENT, "session_id")
      assertStatus(yield* codeOf(rpc(client, "GetSession", {}, { token: fay.token })), grpc.status.INVALID_ARGUMENT, "session_id")

      // Stop of a pending session cancels it (as over REST); stop twice.
      const pending = sessionIdOf(yield* rpc(client, "StartSession", {}, { token: fay.token }))
      assert.strictEqual((yield* rpc(client, "StopSession", { sessionId: pending }, { token: fay.token }))["state"], "completed")
      assertStatus(yield* codeOf(rpc(client, "StopSession", { sessionId: pending }, { token: fay.token })), grpc.status.FAILED_PRECONDITION, "completed")
      yield* activateSession(id)
      yield* rpc(client, "StopSession", { sessionId: id }, { token: fay.token })
      const twice = yield* codeOf(rpc(client, "StopSession", { sessionId: id }, { token: fay.token }))
      assertStatus(twice, grpc.status.FAILED_PRECONDITION, "A completed session cannot become completed")
      // Config of an ended session.
      assertStatus(
        yield* codeOf(rpc(client, "UpdateSessionConfig", { sessionId: id, config: { language: "fr" } }, { token: fay.token })),
        grpc.status.FAILED_PRECONDITION,
        "completed"
      )
    }))

  it.effect("malformed session ids are INVALID_ARGUMENT naming session_id on every call that takes one (as REST's 400); nothing changes", () =>
    Effect.gen(function*() {
      const client = yield* clientFor
      const ivy = yield* signIn(user("ivy"))
      const id = sessionIdOf(yield* rpc(client, "StartSession", {}, { token: ivy.token }))
      for (const malformed of ["not-a-uuid", `${id}x`, "x".repeat(300)]) {
        for (
          const [name, body] of [
            ["GetSession", { sessionId: malformed }],
            ["StopSession", { sessionId: malformed }],
            ["UpdateSessionConfig", { sessionId: malformed, config: { language: "fr" } }]
          ] as const
        ) {
          assertStatus(yield* codeOf(rpc(client, name, body, { token: ivy.token })), grpc.status.INVALID_ARGUMENT, "session_id")
        }
        const watched = yield* watch(client, malformed, { token: ivy.token }).ended
        assert.strictEqual(watched.code, grpc.status.INVALID_ARGUMENT, watched.details)
        assert.include(watched.details, "session_id")
      }
      const after = yield* rpc(client, "GetSession", { sessionId: id }, { token: ivy.token })
      assert.strictEqual(after["state"], "pending")
      assert.notStrictEqual(record(after["config"])["language"], "fr")
    }))

  it.effect("bad input is INVALID_ARGUMENT naming the proto field; nothing is stored", () =>
    Effect.gen(function*() {
      const client = yield* clientFor
      const hal = yield* signIn(user("hal"))
      const cases: ReadonlyArray<readonly [object, string]> = [
        [{ sampleRate: 44100 }, "config.sample_rate"],
        [{ channels: 2 }, "config.channels"],
        [{ encoding: "mp3" }, "config.encoding"],
        [{ language: "english please" }, "config.language"],
        [{ idleTimeoutSeconds: 5 }, "config.idle_timeout_seconds"],
        [{ asrOptionsJson: "{not json" }, "config.asr_options_json"],
        [{ asrOptionsJson: "[1, 2]" }, "config.asr_options_json"],
        [{ asrOptionsJson: "{\"nested\": {\"a\": 1}}" }, "config.asr_options_json.nested"]
      ]
      for (const [config, field] of cases) {
        assertStatus(yield* codeOf(rpc(client, "StartSession", { config }, { token: hal.token })), grpc.status.INVALID_ARGUMENT, field)
      }
      assertStatus(
        yield* codeOf(rpc(client, "StartSession", { config: { asrOptionsJson: "{not json" } }, { token: hal.token })),
        grpc.status.INVALID_ARGUMENT,
        "not valid JSON"
      )
      const id = sessionIdOf(yield* rpc(client, "StartSession", {}, { token: hal.token }))
      const before = yield* storedRow(id)
      assertStatus(
        yield* codeOf(rpc(client, "UpdateSessionConfig", { sessionId: id, config: { sampleRate: 44100 } }, { token: hal.token })),
        grpc.status.INVALID_ARGUMENT,
        "config.sample_rate"
      )
      assert.deepStrictEqual(yield* storedRow(id), before)
      const listed = yield* rpc(client, "ListUserSessions", {}, { token: hal.token })
      assert.lengthOf(list(listed["sessions"]), 1)

      assertStatus(yield* codeOf(rpc(client, "ListUserSessions", { state: "sleeping" }, { token: hal.token })), grpc.status.INVALID_ARGUMENT, "state")
      assertStatus(yield* codeOf(rpc(client, "ListUserSessions", { limit: 101 }, { token: hal.token })), grpc.status.INVALID_ARGUMENT, "limit")
      assertStatus(yield* codeOf(rpc(client, "ListUserSessions", { cursor: "nonsense" }, { token: hal.token })), grpc.status.INVALID_ARGUMENT, "cursor")
    }))

  it.effect("NUL or unpaired surrogates in asr options are INVALID_ARGUMENT naming the field, not INTERNAL; nothing is stored", () =>
    Effect.gen(function*() {
      const client = yield* clientFor
      const ivo = yield* signIn(user("ivo"))
      for (const json of ["{\"k\": \"a\\u0000b\"}", "{\"k\\u0000\": 1}", "{\"k\": \"\\ud800\"}"]) {
        assertStatus(
          yield* codeOf(rpc(client, "StartSession", { config: { asrOptionsJson: json } }, { token: ivo.token })),
          grpc.status.INVALID_ARGUMENT,
          "config.asr_options_json"
        )
      }
      const id = sessionIdOf(yield* rpc(client, "StartSession", {}, { token: ivo.token }))
      const before = yield* storedRow(id)
      assertStatus(
        yield* codeOf(rpc(client, "UpdateSessionConfig", { sessionId: id, config: { asrOptionsJson: "{\"k\": \"\\u0000\"}" } }, { token: ivo.token })),
        grpc.status.INVALID_ARGUMENT,
        "config.asr_options_json"
      )
      assert.deepStrictEqual(yield* storedRow(id), before)
      assertStatus(yield* codeOf(rpc(client, "GetSession", { sessionId: "a\u0000" }, { token: ivo.token })), grpc.status.INVALID_ARGUMENT, "session_id")
    }))

  it.effect("a malformed protobuf message is an error status, not a crash", () =>
    Effect.gen(function*() {
      const client = yield* clientFor
      const ivy = yield* signIn(user("ivy"))
      const raw = (name: string, bytes: Buffer) =>
        Effect.callback<Buffer, grpc.ServiceError>((resume) => {
          client.makeUnaryRequest(
            method(name).path,
            (b: Buffer) => b,
            (b: Buffer) => b,
            bytes,
            metadataOf(ivy.token),
            {},
            (error, value) => resume(error === null ? Effect.succeed(value ?? Buffer.alloc(0)) : Effect.fail(error))
          )
        })
      const garbage = [
        Buffer.from([0xff, 0xff, 0xff]), // truncated varint key
        Buffer.from([0x0a, 0x7f, 0x01]), // config: length 127, 1 byte present
        Buffer.from([0x0a, 0x02, 0x08]) // config with a truncated field
      ]
      for (const bytes of garbage) {
        const error = yield* codeOf(raw("StartSession", bytes))
        assertStatus(error, grpc.status.INVALID_ARGUMENT, "request: not a valid StartSession request message")
      }
      // Still authenticated first: garbage without a token learns nothing about the message.
      const anonymous = yield* codeOf(Effect.callback<Buffer, grpc.ServiceError>((resume) => {
        client.makeUnaryRequest(
          method("GetSession").path,
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.from([0xff]),
          new grpc.Metadata(),
          {},
          (error, value) => resume(error === null ? Effect.succeed(value ?? Buffer.alloc(0)) : Effect.fail(error))
        )
      }))
      assertStatus(anonymous, grpc.status.UNAUTHENTICATED)
      // The server is still there, and nothing was started.
      const listed = yield* rpc(client, "ListUserSessions", {}, { token: ivy.token })
      assert.lengthOf(list(listed["sessions"]), 0)
    }))

  it.effect("REST and gRPC share one store and cache: a REST read after a gRPC stop sees it", () =>
    Effect.gen(function*() {
      const client = yield* clientFor
      const jo = yield* signIn(user("jo"))
      const created = yield* request("POST", "/api/session", {}, jo.headers)
      const id = SessionId.make(str(created.json["id"]))
      yield* activateSession(id)
      // Cached by the REST read...
      assert.strictEqual((yield* request("GET", `/api/session/${id}`, undefined, jo.headers)).json["state"], "active")
      yield* rpc(client, "StopSession", { sessionId: id }, { token: jo.token })
      // ...and dropped by the gRPC write.
      assert.strictEqual((yield* request("GET", `/api/session/${id}`, undefined, jo.headers)).json["state"], "completed")
    }))

  it.effect("parity: the same scenario via REST and via gRPC stores the same rows and events", () =>
    Effect.gen(function*() {
      const client = yield* clientFor
      const viaRest = yield* signIn(user("rest"))
      const viaGrpc = yield* signIn(user("grpc"))
      const config = {
        sampleRate: 48000,
        encoding: "opus",
        language: "de-DE",
        asr: { model: "fast", beam: 4, punctuate: true },
        aic: false,
        idleTimeoutSeconds: 120
      }
      const patch = { language: "fr-FR", asr: { model: "accurate" }, idleTimeoutSeconds: 600 }
      const toProto = (c: Record<string, unknown>) => {
        const { asr, ...rest } = c
        return { ...rest, asrOptionsJson: JSON.stringify(asr) }
      }

      // REST: start, update config, activate, stop, stop again (refused), update again (refused).
      const restStarted = yield* request("POST", "/api/session", config, viaRest.headers)
      assert.strictEqual(restStarted.status, 201, restStarted.text)
      const restId = SessionId.make(str(restStarted.json["id"]))
      assert.strictEqual((yield* request("PATCH", `/api/session/${restId}/config`, patch, viaRest.headers)).status, 200)
      yield* activateSession(restId)
      const restStopped = yield* request("POST", `/api/session/${restId}/stop`, undefined, viaRest.headers)
      assert.strictEqual(restStopped.status, 200, restStopped.text)
      assert.strictEqual((yield* request("POST", `/api/session/${restId}/stop`, undefined, viaRest.headers)).status, 409)
      assert.strictEqual((yield* request("PATCH", `/api/session/${restId}/config`, patch, viaRest.headers)).status, 409)

      // gRPC: the same.
      const caller = { token: viaGrpc.token }
      const grpcId = sessionIdOf(yield* rpc(client, "StartSession", { config: toProto(config) }, caller))
      yield* rpc(client, "UpdateSessionConfig", { sessionId: grpcId, config: toProto(patch) }, caller)
      yield* activateSession(grpcId)
      const grpcStopped = yield* rpc(client, "StopSession", { sessionId: grpcId }, caller)
      assertStatus(yield* codeOf(rpc(client, "StopSession", { sessionId: grpcId }, caller)), grpc.status.FAILED_PRECONDITION)
      assertStatus(yield* codeOf(rpc(client, "UpdateSessionConfig", { sessionId: grpcId, config: toProto(patch) }, caller)), grpc.status.FAILED_PRECONDITION)

      const restRow = yield* storedRow(restId)
      assert.isDefined(restRow)
      assert.deepStrictEqual(yield* storedRow(grpcId), restRow)
      assert.deepInclude(restRow, { state: "completed", started: true, ended: true, error: null })
      const restEvents = yield* storedEvents(restId, viaRest)
      assert.deepStrictEqual(yield* storedEvents(grpcId, viaGrpc), restEvents)
      assert.deepStrictEqual(restEvents, [
        { from: null, to: "pending", actor: "owner", reason: "start" },
        { from: "pending", to: "active", actor: "media", reason: "media connected" },
        { from: "active", to: "completed", actor: "owner", reason: "stopped by client" }
      ])
      // And the answers agree: the REST JSON and the proto message describe the same session.
      // (proto-loader marks set `optional` fields with "_<name>" keys; they are not data.)
      const fields = Object.fromEntries(Object.entries(record(grpcStopped["config"])).filter(([key]) => !key.startsWith("_")))
      assert.deepStrictEqual(fields, toProto(record(restStopped.json["config"])))
    }))
})

layer(server({ RATE_LIMIT_SESSION_PER_MINUTE: "3" }), { timeout: 60_000, excludeTestServices: true })("gRPC SessionService rate limit", (it) => {
  it.effect("the per-user session limit: RESOURCE_EXHAUSTED with retry-after once spent, per user", () =>
    Effect.gen(function*() {
      const client = yield* clientFor
      // All within one epoch-aligned minute window.
      const left = 60_000 - (Date.now() % 60_000)
      if (left < 5_000) yield* Effect.sleep(left + 10)
      const kim = yield* signIn(user("kim"))
      const other = yield* signIn(user("kim-other"))
      const id = sessionIdOf(yield* rpc(client, "StartSession", {}, { token: kim.token }))
      yield* rpc(client, "GetSession", { sessionId: id }, { token: kim.token })
      yield* rpc(client, "ListUserSessions", {}, { token: kim.token })
      const refused = yield* codeOf(rpc(client, "GetSession", { sessionId: id }, { token: kim.token }))
      assertStatus(refused, grpc.status.RESOURCE_EXHAUSTED, "Rate limit of 3")
      const retryAfter = refused.metadata.get("retry-after")[0]
      assert.isAbove(Number(retryAfter), 0)
      assert.strictEqual(refused.metadata.get("ratelimit-remaining")[0], "0")
      // Streams count too, and REST under /api/session shares the budget.
      assert.strictEqual((yield* watch(client, id, { token: kim.token }).ended).code, grpc.status.RESOURCE_EXHAUSTED)
      assert.strictEqual((yield* request("GET", `/api/session/${id}`, undefined, kim.headers)).status, 429)
      // Another user has a budget of their own.
      assert.strictEqual(Option.isSome(Option.fromUndefinedOr((yield* rpc(client, "ListUserSessions", {}, { token: other.token }))["sessions"])), true)
    }))
})

// The in-memory state store (no REDIS_URL): the per-IP budget starts empty, whatever other test processes do.
const isolated = onFreshDatabase(
  Layer.mergeAll(serveHttp(ApiRoutes, 0, "127.0.0.1"), SessionGrpcLive.pipe(Layer.provideMerge(GrpcServer.layer))),
  { JWT_SECRET, AUTH_PROVISIONING_KEY: PROVISIONING_KEY, SESSION_SWEEP_INTERVAL_MS: "3600000", RATE_LIMIT_AUTH_PER_MINUTE: "3" }
).pipe(Layer.provide(logs.layer))

layer(isolated, { timeout: 60_000, excludeTestServices: true })("gRPC bad tokens", (it) => {
  it.effect("calls with forged tokens count per peer IP: UNAUTHENTICATED until the auth budget is spent, then RESOURCE_EXHAUSTED", () =>
    Effect.gen(function*() {
      const client = yield* clientFor
      const left = 60_000 - (Date.now() % 60_000)
      if (left < 5_000) yield* Effect.sleep(left + 10)
      const forged = { token: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged" }
      for (let i = 0; i < 3; i++) {
        assertStatus(yield* codeOf(rpc(client, "GetSession", { sessionId: crypto.randomUUID() }, forged)), grpc.status.UNAUTHENTICATED)
      }
      const refused = yield* codeOf(rpc(client, "GetSession", { sessionId: crypto.randomUUID() }, forged))
      assertStatus(refused, grpc.status.RESOURCE_EXHAUSTED, "bad tokens")
      assert.isAbove(Number(refused.metadata.get("retry-after")[0]), 0)
    }))
})
