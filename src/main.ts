import { Cause, Context, Effect, Exit, Layer } from "effect"
import { AudioSink } from "./layers/AudioSink.ts"
import { AppConfig } from "./layers/Config.ts"
import { Database } from "./layers/Database.ts"
import { GrpcServer } from "./layers/GrpcServer.ts"
import { Health } from "./layers/Health.ts"
import { HttpServerLive } from "./layers/HttpServer.ts"
import { LoggerLive } from "./layers/Logger.ts"
import { Metrics } from "./layers/Metrics.ts"
import { StateStore } from "./layers/StateStore.ts"
import { TracingLive } from "./layers/Tracing.ts"
import { logFirstRunNotes } from "./programs/first-run.ts"
import { SharedServices } from "./programs/services.ts"
import { SessionDrain } from "./programs/sessions/drain.ts"
import { SessionGrpcLive } from "./programs/sessions/grpc.ts"
import { armShutdownDeadline, awaitShutdownSignal } from "./programs/shutdown.ts"

/**
 * The whole service as one layer. Built bottom-up (health and metrics, then Postgres and the
 * state store, then the HTTP and gRPC listeners); released top-down, so listeners stop before
 * the stores they use go away. The session, auth and rate-limit services are built once below both
 * listeners, so REST and gRPC share one session store, cache and set of metrics.
 */
export const AppLayer = Layer.mergeAll(HttpServerLive, SessionGrpcLive.pipe(Layer.provideMerge(GrpcServer.layer))).pipe(
  // Released after the listeners, before the services: ends what requests in flight started.
  Layer.provideMerge(SessionDrain.layer),
  Layer.provideMerge(SharedServices),
  Layer.provideMerge(Layer.mergeAll(Database.layer, StateStore.layer, AudioSink.layer)),
  Layer.provideMerge(Layer.mergeAll(Health.layer, Metrics.layer)),
  Layer.provide(TracingLive)
)

/**
 * Runs until SIGTERM/SIGINT, then: readiness 503, new sessions, transports and producers refused
 * (503, `Connection: close` on every response), open sessions told and ended (reason `shutdown`),
 * listeners drain, layers release, exit 0.
 */
export const main = Effect.gen(function*() {
  const config = yield* AppConfig
  const services = yield* Layer.build(AppLayer)
  const health = Context.get(services, Health)
  const grpc = Context.get(services, GrpcServer)
  yield* Effect.logInfo("service started").pipe(Effect.annotateLogs({
    httpPort: config.http.port,
    grpcPort: grpc.port,
    bridgeId: config.service.bridgeId
  }))
  yield* logFirstRunNotes(config)

  const signal = yield* awaitShutdownSignal
  yield* armShutdownDeadline(config.service.shutdownTimeoutMs)
  yield* Effect.logInfo(`shutdown: ${signal} received`)
  yield* health.beginShutdown
  yield* Context.get(services, SessionDrain).begin
  // gRPC stops accepting now, alongside HTTP (closed first as the scope unwinds); its release awaits this drain.
  yield* Effect.forkDetach(grpc.drain)
}).pipe(Effect.scoped, Effect.provide(LoggerLive), Effect.provide(AppConfig.layer))

const describe = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.squash(cause)
  return error instanceof Error ? error.message : Cause.pretty(cause)
}

if (import.meta.main) {
  void Effect.runPromiseExit(main).then((exit) => {
    if (Exit.isSuccess(exit)) {
      process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level: "info", msg: "shutdown complete" })}\n`)
      process.exit(0)
    }
    // Start-up failures (invalid config, unreachable database, port in use) end in one line.
    process.stderr.write(`${describe(exit.cause)}\n`)
    process.exit(1)
  })
}
