import type { sendUnaryData, ServerErrorResponse, ServerUnaryCall, ServerWritableStream, UntypedServiceImplementation } from "@grpc/grpc-js"
import { Duration, Effect, FiberSet, Layer, type Scope, Stream } from "effect"
import { AppConfig } from "../../../layers/Config.ts"
import { loadProto } from "../../../layers/grpc/proto.ts"
import { GrpcServer, GrpcServerError } from "../../../layers/GrpcServer.ts"
import type { Principal } from "../../../schemas/auth.ts"
import { type CallGuard, type CallServices, guarded } from "./call.ts"
import { type CommonError, type DomainError, responseOf, shuttingDown, type Statuses } from "./failure.ts"
import { tolerantRequests } from "./request.ts"

/** A gRPC service: its name, proto file, rate-limit class and how its domain errors answer. */
export interface GrpcServiceSpec<D extends DomainError> extends CallGuard {
  /** The file under proto/ that declares the service. */
  readonly proto: string
  readonly statuses: Statuses<D>
}

/** A method's work: the request (a proto-loader object) and the caller's principal in, the answer out. */
type Work<A, D, R> = (request: unknown, principal: Principal) => Effect.Effect<A, D | CommonError, R | Scope.Scope>

/** The handler makers a service's methods are written with. */
export interface GrpcMethods<D, R> {
  /** A unary method answering `work`'s value (already in proto shape). */
  readonly unary: <A>(method: string, work: Work<A, D, R>) => (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => void
  /** A server-streaming method writing each element of `work`'s stream, encoded, with backpressure; it ends with the stream. */
  readonly serverStream: <A>(
    method: string,
    work: Work<Stream.Stream<A, D | CommonError, R>, D, R>,
    encode: (a: A) => unknown
  ) => (call: ServerWritableStream<unknown, unknown>) => void
}

/**
 * Serves a service on the GrpcServer: every call authenticated from its metadata, rate limited,
 * bounded by its deadline, its failure mapped to a status; `methods` maps the proto's methods to
 * programs, as a REST group maps endpoints. Requires services, provides none.
 */
export const serveGrpc = <D extends DomainError, R>(
  spec: GrpcServiceSpec<D>,
  methods: (make: GrpcMethods<D, R>) => UntypedServiceImplementation
) =>
  Layer.effectDiscard(Effect.gen(function*() {
    const grpc = yield* GrpcServer
    const { service } = yield* AppConfig
    const pkg = yield* Effect.try({
      try: () => tolerantRequests(loadProto(spec.proto), spec.service),
      catch: (error) => new GrpcServerError({ message: `proto/${spec.proto}: ${error instanceof Error ? error.message : String(error)}` })
    })

    // Released in reverse: streams are ended first, then unary calls get until the shutdown
    // deadline to finish, then whatever is left is interrupted.
    const unaryCalls = yield* FiberSet.make<void, never>()
    const runUnaryCall = yield* FiberSet.runtime(unaryCalls)<R | CallServices>()
    yield* Effect.addFinalizer(() => FiberSet.awaitEmpty(unaryCalls).pipe(Effect.timeoutOption(Duration.millis(service.shutdownTimeoutMs))))
    const streamCalls = yield* FiberSet.make<void, never>()
    const runStreamCall = yield* FiberSet.runtime(streamCalls)<R | CallServices>()

    const unary: GrpcMethods<D, R>["unary"] = (method, work) => (call, callback) => {
      let answered = false
      const answer = (error: ServerErrorResponse | null, value?: unknown) => {
        if (answered || call.cancelled) return
        answered = true
        if (error === null) callback(null, value)
        else callback(error)
      }
      const fiber = runUnaryCall(
        guarded(spec, method, call, (principal) => work(call.request, principal)).pipe(
          Effect.matchCauseEffect({
            onSuccess: (value) => Effect.sync(() => answer(null, value)),
            onFailure: (cause) => Effect.map(responseOf(method, cause, spec.statuses), (response) => answer(response))
          }),
          Effect.onInterrupt(() => Effect.sync(() => answer(shuttingDown())))
        )
      )
      call.on("cancelled", () => fiber.interruptUnsafe())
    }

    const serverStream: GrpcMethods<D, R>["serverStream"] = (method, work, encode) => (call) => {
      let closed = false
      const close = (error: ServerErrorResponse | null) => {
        if (closed || call.cancelled) return
        closed = true
        if (error === null) call.end()
        else call.emit("error", error)
      }
      const send = (message: unknown) =>
        call.write(message) ? Effect.void : Effect.callback<void>((resume) => void call.once("drain", () => resume(Effect.void)))
      const fiber = runStreamCall(
        guarded(spec, method, call, (principal) => Effect.flatMap(work(call.request, principal), (stream) => Stream.runForEach(stream, (a) => send(encode(a)))))
          .pipe(
            Effect.matchCauseEffect({
              onSuccess: () => Effect.sync(() => close(null)),
              onFailure: (cause) => Effect.map(responseOf(method, cause, spec.statuses), close)
            }),
            Effect.onInterrupt(() => Effect.sync(() => close(shuttingDown())))
          )
      )
      call.on("cancelled", () => fiber.interruptUnsafe())
    }

    yield* grpc.addService(pkg, spec.service, methods({ unary, serverStream }))
  }))
