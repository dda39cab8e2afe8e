import { Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from "@grpc/grpc-js"
import type { PackageDefinition } from "@grpc/proto-loader"
import { ReflectionService } from "@grpc/reflection"
import { Context, Deferred, Duration, Effect, FiberSet, Layer, Schema } from "effect"
import { AppConfig } from "./Config.ts"
import { HEALTH_SERVICE, makeHealthService } from "./grpc/health.ts"
import { findService, loadProto } from "./grpc/proto.ts"
import { Health } from "./Health.ts"
import { errorMessage } from "./error-message.ts"

export class GrpcServerError extends Schema.TaggedError<GrpcServerError>()("GrpcServerError", {
  message: Schema.String
}) {}

/**
 * The gRPC server (grpc-js): `grpc.health.v1.Health` (same readiness as `/ready`), server
 * reflection (v1 and v1alpha) and whatever services later layers add with `addService`.
 */
export class GrpcServer extends Context.Service<GrpcServer, {
  /** The port actually bound (the chosen one when GRPC_PORT=0). */
  readonly port: number
  /**
   * Serves `service` (fully qualified, e.g. "auralink.session.v1.SessionService") from a
   * proto-loader package with the given handlers, at once (grpc-js routes per call). The service
   * is then listed by reflection and answered by health checks under its name.
   */
  readonly addService: (
    pkg: PackageDefinition,
    service: string,
    implementation: UntypedServiceImplementation
  ) => Effect.Effect<void, GrpcServerError>
  /**
   * Stops accepting calls (new ones get UNAVAILABLE), ends health watches, lets in-flight calls
   * finish, and force-closes after SHUTDOWN_TIMEOUT_MS. Idempotent; the layer's release runs it too.
   */
  readonly drain: Effect.Effect<void>
}>()("auralink/GrpcServer") {
  static readonly layer = Layer.effect(
    GrpcServer,
    Effect.gen(function*() {
      const settings = yield* AppConfig
      const health = yield* Health
      const run = yield* FiberSet.makeRuntime<never, void, never>()
      const server = new Server()
      const names = new Set<string>([""])
      const packages: Array<PackageDefinition> = []
      let reflection: ReadonlyArray<ServiceDefinition> = []

      // Reflection is built from package definitions, so it is rebuilt over all of them on each add.
      const refreshReflection = Effect.try({
        try: () => {
          const merged = packages.reduce<PackageDefinition>((all, pkg) => ({ ...all, ...pkg }), {})
          const next = new ReflectionService(merged)
          for (const definition of reflection) server.removeService(definition)
          const added: Array<ServiceDefinition> = []
          next.addToServer({ addService: (definition, impl) => (added.push(definition), server.addService(definition, impl)) })
          reflection = added
        },
        catch: (error) => new GrpcServerError({ message: `gRPC reflection: ${errorMessage(error)}` })
      })

      const addService = (pkg: PackageDefinition, service: string, implementation: UntypedServiceImplementation) =>
        Effect.gen(function*() {
          const definition = findService(pkg, service)
          if (definition === undefined) {
            return yield* new GrpcServerError({ message: `${service} is not a service of the given proto package` })
          }
          yield* Effect.try({
            try: () => server.addService(definition, implementation),
            catch: (error) => new GrpcServerError({ message: `gRPC addService ${service}: ${errorMessage(error)}` })
          })
          names.add(service)
          packages.push(pkg)
          yield* refreshReflection
        })

      const healthService = yield* makeHealthService({ readiness: health.readiness, isKnown: (s) => names.has(s), run })
      const healthPkg = yield* Effect.try({
        try: () => loadProto("health.proto"),
        catch: (error) => new GrpcServerError({ message: `proto/health.proto: ${errorMessage(error)}` })
      })
      yield* addService(healthPkg, HEALTH_SERVICE, healthService.implementation)

      const stopped = yield* Deferred.make<void>()
      let deadline: number | undefined
      const drain = Effect.gen(function*() {
        if (deadline === undefined) {
          deadline = Date.now() + settings.service.shutdownTimeoutMs
          yield* healthService.close
          server.tryShutdown(() => Deferred.doneUnsafe(stopped, Effect.void))
        }
        yield* Deferred.await(stopped).pipe(Effect.timeoutOrElse({
          duration: Duration.millis(Math.max(0, deadline - Date.now())),
          orElse: () =>
            Effect.logWarning("gRPC calls still running at the shutdown deadline: closing them").pipe(
              Effect.andThen(Effect.sync(() => (server.forceShutdown(), Deferred.doneUnsafe(stopped, Effect.void))))
            )
        }))
      })

      const host = settings.http.host
      const address = `${host.includes(":") ? `[${host}]` : host}:${settings.grpc.port}`
      const port = yield* Effect.acquireRelease(
        Effect.callback<number, GrpcServerError>((resume) => {
          server.bindAsync(
            address,
            ServerCredentials.createInsecure(),
            (error, bound) =>
              resume(error === null ? Effect.succeed(bound) : Effect.fail(new GrpcServerError({ message: `gRPC bind ${address}: ${error.message}` })))
          )
        }),
        () => drain
      )
      yield* Effect.logInfo(`gRPC listening on ${address.replace(/:\d+$/, `:${port}`)}`)
      return { port, addService, drain }
    })
  )
}
