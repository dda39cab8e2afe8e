import { describe, expect, it } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import { loadSync, type MethodDefinition, type PackageDefinition } from "@grpc/proto-loader"
import { Effect, Fiber, Layer, Option, Schedule, Schema } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { AppConfig } from "../../src/layers/Config.ts"
import { loadProto, protoOptions } from "../../src/layers/grpc/proto.ts"
import { GrpcServer } from "../../src/layers/GrpcServer.ts"
import { Health } from "../../src/layers/Health.ts"

// A test service, so addService, reflection of later services and graceful stop can be checked.
const echoProto = join(mkdtempSync(join(tmpdir(), "grpc-test-")), "echo.proto")
writeFileSync(
  echoProto,
  `syntax = "proto3";
package auralink.test.v1;
message EchoRequest { string text = 1; uint32 delay_ms = 2; }
message EchoReply { string text = 1; }
service Echo { rpc Echo(EchoRequest) returns (EchoReply); }
`
)
const ECHO = "auralink.test.v1.Echo"
const echoPkg = loadSync(echoProto, protoOptions)
const healthPkg = loadProto("health.proto")
const reflectionPkg = loadSync(
  join(dirname(createRequire(import.meta.url).resolve("@grpc/reflection")), "../proto/grpc/reflection/v1/reflection.proto"),
  protoOptions
)

const method = (pkg: PackageDefinition, service: string, name: string): MethodDefinition<object, object> => {
  const definition = pkg[service]
  const found = definition !== undefined && !("format" in definition) ? definition[name] : undefined
  if (found === undefined) throw new Error(`no method ${service}/${name}`)
  return found
}
const Check = method(healthPkg, "grpc.health.v1.Health", "Check")
const Watch = method(healthPkg, "grpc.health.v1.Health", "Watch")
const Echo = method(echoPkg, ECHO, "Echo")
const Reflect = method(reflectionPkg, "grpc.reflection.v1.ServerReflection", "ServerReflectionInfo")

const HealthResponse = Schema.Struct({ status: Schema.String })
const EchoRequest = Schema.Struct({ text: Schema.String, delayMs: Schema.Number })
const EchoReply = Schema.Struct({ text: Schema.String })
const FileDescriptors = Schema.Struct({
  fileDescriptorResponse: Schema.Struct({ fileDescriptorProto: Schema.Array(Schema.Unknown) })
})
const ListServices = Schema.Struct({
  listServicesResponse: Schema.Struct({ service: Schema.Array(Schema.Struct({ name: Schema.String })) })
})

const unary = (client: grpc.Client, m: MethodDefinition<object, object>, request: object, options: grpc.CallOptions = {}) =>
  Effect.callback<object, grpc.ServiceError>((resume) => {
    client.makeUnaryRequest(
      m.path,
      m.requestSerialize,
      m.responseDeserialize,
      request,
      options,
      (error, value) => resume(error === null ? Effect.succeed(value ?? {}) : Effect.fail(error))
    )
  })

const check = (client: grpc.Client, service: string) =>
  unary(client, Check, { service }).pipe(Effect.map((r) => Schema.decodeUnknownSync(HealthResponse)(r).status))
const code = <A>(effect: Effect.Effect<A, grpc.ServiceError>) => Effect.map(Effect.flip(effect), (e) => e.code)

const reflect = (client: grpc.Client, request: object) =>
  Effect.callback<object, grpc.ServiceError>((resume) => {
    const call = client.makeBidiStreamRequest(Reflect.path, Reflect.requestSerialize, Reflect.responseDeserialize)
    call.on("data", (message: object) => (resume(Effect.succeed(message)), call.end()))
    call.on("error", (error: grpc.ServiceError) => resume(Effect.fail(error)))
    call.write(request)
  })
const listServices = (client: grpc.Client) =>
  reflect(client, { listServices: "*" }).pipe(
    Effect.map((r) => Schema.decodeUnknownSync(ListServices)(r).listServicesResponse.service.map((s) => s.name).sort())
  )

/** Retries `probe` every 20 ms until it returns a value (up to 5 s). */
const eventually = <A>(probe: () => A | undefined) =>
  Effect.suspend(() => Option.match(Option.fromUndefinedOr(probe()), { onNone: () => Effect.fail("not yet"), onSome: Effect.succeed })).pipe(
    Effect.retry(Schedule.spaced("20 millis")),
    Effect.timeout("5 seconds"),
    Effect.orDie
  )

const layerWith = (shutdownTimeoutMs: number) =>
  GrpcServer.layer.pipe(
    Layer.provideMerge(Health.layer),
    Layer.provide(AppConfig.layerFrom({ HOST: "127.0.0.1", GRPC_PORT: "0", SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs) }))
  )
const TestLayer = layerWith(5000)

/** A started server on a free port, a client for it, and a switch for a critical fake dependency. */
const setup = Effect.gen(function*() {
  const server = yield* GrpcServer
  const health = yield* Health
  const dependency = { up: true }
  yield* health.register({
    name: "fake-db",
    critical: true,
    check: Effect.suspend(() => dependency.up ? Effect.void : Effect.fail("fake-db is down"))
  })
  const client = yield* Effect.acquireRelease(
    Effect.sync(() => new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure())),
    (c) => Effect.sync(() => c.close())
  )
  return { server, health, dependency, client }
})

describe("GrpcServer", () => {
  it.live("binds a free port when GRPC_PORT=0", () =>
    Effect.gen(function*() {
      const { server } = yield* setup
      expect(server.port).toBeGreaterThan(0)
    }).pipe(Effect.provide(TestLayer)))

  it.live("Check follows readiness: SERVING, NOT_SERVING with a critical dependency down, NOT_SERVING after shutdown begins", () =>
    Effect.gen(function*() {
      const { client, dependency, health } = yield* setup
      expect(yield* check(client, "")).toBe("SERVING")
      expect(yield* check(client, "grpc.health.v1.Health")).toBe("SERVING")
      dependency.up = false
      expect(yield* check(client, "")).toBe("NOT_SERVING")
      dependency.up = true
      expect(yield* check(client, "")).toBe("SERVING")
      yield* health.beginShutdown
      expect(yield* check(client, "")).toBe("NOT_SERVING")
      expect(yield* check(client, "grpc.health.v1.Health")).toBe("NOT_SERVING")
    }).pipe(Effect.provide(TestLayer)))

  it.live("Check on an unknown service is NOT_FOUND; a service added later becomes known", () =>
    Effect.gen(function*() {
      const { client, server } = yield* setup
      expect(yield* code(check(client, "no.such.Service"))).toBe(grpc.status.NOT_FOUND)
      expect(yield* code(check(client, ECHO))).toBe(grpc.status.NOT_FOUND)
      yield* server.addService(echoPkg, ECHO, { Echo: (_call: unknown, cb: grpc.sendUnaryData<object>) => cb(null, { text: "" }) })
      expect(yield* check(client, ECHO)).toBe("SERVING")
    }).pipe(Effect.provide(TestLayer)))

  it.live("Watch sends the current status at once, then each change", () =>
    Effect.gen(function*() {
      const { client, dependency } = yield* setup
      const seen: Array<string> = []
      const call = client.makeServerStreamRequest(Watch.path, Watch.requestSerialize, Watch.responseDeserialize, { service: "" })
      call.on("data", (message: object) => seen.push(Schema.decodeUnknownSync(HealthResponse)(message).status))
      call.on("error", () => {}) // the cancel below ends the stream with CANCELLED
      yield* Effect.addFinalizer(() => Effect.sync(() => call.cancel()))
      yield* eventually(() => seen.length >= 1 || undefined)
      dependency.up = false
      yield* eventually(() => seen.length >= 2 || undefined)
      expect(seen).toEqual(["SERVING", "NOT_SERVING"])
      const unknown: Array<string> = []
      const other = client.makeServerStreamRequest(Watch.path, Watch.requestSerialize, Watch.responseDeserialize, { service: "no.such.Service" })
      other.on("data", (message: object) => unknown.push(Schema.decodeUnknownSync(HealthResponse)(message).status))
      other.on("error", () => {})
      yield* Effect.addFinalizer(() => Effect.sync(() => other.cancel()))
      yield* eventually(() => unknown.length >= 1 || undefined)
      expect(unknown).toEqual(["SERVICE_UNKNOWN"])
    }).pipe(Effect.provide(TestLayer)))

  it.live("reflection lists the health service and services added later", () =>
    Effect.gen(function*() {
      const { client, server } = yield* setup
      expect(yield* listServices(client)).toEqual(["grpc.health.v1.Health"])
      yield* server.addService(echoPkg, ECHO, { Echo: (_call: unknown, cb: grpc.sendUnaryData<object>) => cb(null, { text: "" }) })
      expect(yield* listServices(client)).toEqual([ECHO, "grpc.health.v1.Health"])
      // what `grpcurl describe` asks next: the file declaring the symbol
      const files = Schema.decodeUnknownSync(FileDescriptors)(yield* reflect(client, { fileContainingSymbol: ECHO }))
      expect(files.fileDescriptorResponse.fileDescriptorProto.length).toBeGreaterThan(0)
      // adding the same service twice or a name that is not a service is a typed error
      expect((yield* Effect.flip(server.addService(echoPkg, ECHO, {})))._tag).toBe("GrpcServerError")
      expect((yield* Effect.flip(server.addService(echoPkg, "auralink.test.v1.EchoReply", {})))._tag).toBe("GrpcServerError")
    }).pipe(Effect.provide(TestLayer)))

  it.live("drain lets an in-flight call finish, ends health watches and refuses new calls", () =>
    Effect.gen(function*() {
      const { client, server } = yield* setup
      let received = 0
      yield* server.addService(echoPkg, ECHO, {
        Echo: (call: grpc.ServerUnaryCall<unknown, object>, cb: grpc.sendUnaryData<object>) => {
          const request = Schema.decodeUnknownSync(EchoRequest)(call.request)
          received++
          setTimeout(() => cb(null, { text: request.text }), request.delayMs)
        }
      })
      const watched: Array<string> = []
      const watch = client.makeServerStreamRequest(Watch.path, Watch.requestSerialize, Watch.responseDeserialize, { service: "" })
      watch.on("data", (message: object) => watched.push(Schema.decodeUnknownSync(HealthResponse)(message).status))
      let watchEnd: grpc.status | undefined
      watch.on("status", (s: grpc.StatusObject) => (watchEnd = s.code))
      yield* eventually(() => watched.length >= 1 || undefined)
      const slow = yield* Effect.forkChild(unary(client, Echo, { text: "slow", delayMs: 800 }))
      yield* eventually(() => received === 1 || undefined)
      const started = Date.now()
      const draining = yield* Effect.forkChild(server.drain)
      yield* Effect.sleep("100 millis")
      const deadline = { deadline: Date.now() + 3000 }
      expect(yield* code(unary(client, Echo, { text: "late", delayMs: 0 }, deadline))).toBe(grpc.status.UNAVAILABLE)
      const fresh = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure())
      expect(yield* code(unary(fresh, Echo, { text: "late", delayMs: 0 }, deadline))).toBe(grpc.status.UNAVAILABLE)
      fresh.close()
      expect(Schema.decodeUnknownSync(EchoReply)(yield* Fiber.join(slow)).text).toBe("slow")
      yield* Fiber.join(draining)
      expect(received).toBe(1)
      // open health watches are told NOT_SERVING and ended, so they do not hold the drain open
      expect(yield* eventually(() => watchEnd)).toBe(grpc.status.OK)
      expect(watched).toEqual(["SERVING", "NOT_SERVING"])
      expect(Date.now() - started).toBeLessThan(5000)
    }).pipe(Effect.provide(TestLayer)))

  it.live("drain force-closes calls still running at the shutdown deadline", () =>
    Effect.gen(function*() {
      const { client, server } = yield* setup
      let received = 0
      yield* server.addService(echoPkg, ECHO, {
        Echo: (_call: unknown, cb: grpc.sendUnaryData<object>) => (received++, setTimeout(() => cb(null, { text: "too late" }), 3000).unref())
      })
      const stuck = yield* Effect.forkChild(code(unary(client, Echo, { text: "stuck", delayMs: 0 })))
      yield* eventually(() => received === 1 || undefined)
      const started = Date.now()
      yield* server.drain
      expect(Date.now() - started).toBeLessThan(1500)
      expect([grpc.status.CANCELLED, grpc.status.UNAVAILABLE, grpc.status.INTERNAL]).toContain(yield* Fiber.join(stuck))
    }).pipe(Effect.provide(layerWith(300))))

  it.live("a malformed Check request gets an error status and the server keeps serving", () =>
    Effect.gen(function*() {
      const { client } = yield* setup
      const raw = (bytes: Buffer) => (b: Buffer) => (void b, bytes)
      const malformed = Effect.callback<Buffer, grpc.ServiceError>((resume) => {
        // a length-delimited field 2 claiming 3 bytes where there is 1 (protobufjs does not bounds-check field 1 strings)
        client.makeUnaryRequest(
          Check.path,
          raw(Buffer.from([0x12, 0x03, 0x41])),
          (b: Buffer) => b,
          Buffer.alloc(0),
          (error, value) => resume(error === null ? Effect.succeed(value ?? Buffer.alloc(0)) : Effect.fail(error))
        )
      })
      expect([grpc.status.INTERNAL, grpc.status.INVALID_ARGUMENT]).toContain(yield* code(malformed))
      expect(yield* check(client, "")).toBe("SERVING")
    }).pipe(Effect.provide(TestLayer)))
})
