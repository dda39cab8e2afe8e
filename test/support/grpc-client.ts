import { assert } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import type { MethodDefinition, PackageDefinition } from "@grpc/proto-loader"
import { Effect } from "effect"
import { loadProto } from "../../src/layers/grpc/proto.ts"
import { GrpcServer } from "../../src/layers/GrpcServer.ts"
import { record } from "./auth.ts"

/** A real grpc-js client of the layer-built GrpcServer, for the tests of the gRPC services. */

/** The method `service`/`name` of a loaded package; throws when it is not there. */
export const methodOf = (pkg: PackageDefinition, service: string, name: string): MethodDefinition<object, object> => {
  const definition = pkg[service]
  const found = definition !== undefined && !("format" in definition) ? definition[name] : undefined
  if (found === undefined) throw new Error(`no method ${service}/${name}`)
  return found
}

export interface Caller {
  readonly token?: string
  /** The whole `authorization` value, instead of `Bearer <token>`. */
  readonly authorization?: string
  readonly options?: grpc.CallOptions
}

/** `authorization: <raw>`, else `authorization: Bearer <token>`, else nothing. */
export const metadataOf = (token: string | undefined, raw?: string) => {
  const metadata = new grpc.Metadata()
  if (raw !== undefined) metadata.set("authorization", raw)
  else if (token !== undefined) metadata.set("authorization", `Bearer ${token}`)
  return metadata
}

/** A generic client of the GrpcServer's port, closed with the scope. */
export const clientFor = Effect.gen(function*() {
  const { port } = yield* GrpcServer
  return yield* Effect.acquireRelease(
    Effect.sync(() => new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure())),
    (c) => Effect.sync(() => c.close())
  )
})

/** The ServiceError of a call expected to fail. */
export const codeOf = <A>(effect: Effect.Effect<A, grpc.ServiceError>) => Effect.flip(effect)

export const assertStatus = (error: grpc.ServiceError, code: grpc.status, ...mentions: ReadonlyArray<string>) => {
  assert.strictEqual(error.code, code, `${grpc.status[error.code]}: ${error.details}`)
  for (const text of mentions) assert.include(error.details, text)
}

/** Calls of one service of `proto/<protoFile>`, by method name. */
export const serviceClient = (protoFile: string, service: string) => {
  const pkg = loadProto(protoFile)
  const method = (name: string) => methodOf(pkg, service, name)

  /** A unary call; fails with the ServiceError. */
  const rpc = (client: grpc.Client, name: string, body: object, caller: Caller = {}) =>
    Effect.callback<Record<string, unknown>, grpc.ServiceError>((resume) => {
      const m = method(name)
      const call = client.makeUnaryRequest(
        m.path,
        m.requestSerialize,
        m.responseDeserialize,
        body,
        metadataOf(caller.token, caller.authorization),
        caller.options ?? {},
        (error, value) => resume(error === null ? Effect.succeed(record(value)) : Effect.fail(error))
      )
      return Effect.sync(() => call.cancel())
    })

  /** A server stream: its messages as they come, and how it ended (code OK or the error). */
  const watch = (client: grpc.Client, name: string, body: object, caller: Caller = {}) => {
    const m = method(name)
    const stream = client.makeServerStreamRequest(
      m.path,
      m.requestSerialize,
      m.responseDeserialize,
      body,
      metadataOf(caller.token, caller.authorization),
      caller.options ?? {}
    )
    const messages: Array<Record<string, unknown>> = []
    stream.on("data", (message: Record<string, unknown>) => messages.push(message))
    stream.on("error", () => undefined) // the outcome is read from "status"
    const ended = new Promise<grpc.StatusObject>((resolve) => stream.on("status", resolve))
    return {
      messages,
      cancel: () => stream.cancel(),
      ended: Effect.promise(() => ended).pipe(Effect.timeout("10 seconds"), Effect.orDie)
    }
  }

  return { method, rpc, watch }
}
