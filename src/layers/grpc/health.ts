import { type sendUnaryData, type ServerUnaryCall, type ServerWritableStream, status, type UntypedServiceImplementation } from "@grpc/grpc-js"
import { Effect, Option, Schedule, Schema } from "effect"
import type { Readiness } from "../Health.ts"
import { serviceError } from "./status.ts"

export const HEALTH_SERVICE = "grpc.health.v1.Health"

type ServingStatus = "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN"
interface HealthCheckResponse {
  readonly status: ServingStatus
}

const decodeRequest = Schema.decodeUnknownOption(Schema.Struct({ service: Schema.String }))
const WATCH_POLL = "1 second"

interface Watcher {
  readonly service: string
  readonly call: ServerWritableStream<unknown, HealthCheckResponse>
  last: ServingStatus | undefined
}

/**
 * The `grpc.health.v1.Health` handlers over `Health.readiness`: SERVING when ready, NOT_SERVING
 * otherwise, for "" and every service name `isKnown` accepts. Watchers get the current status at
 * once, then each change; readiness is polled once per second, and only while someone watches.
 */
export const makeHealthService = (options: {
  readonly readiness: Effect.Effect<Readiness>
  readonly isKnown: (service: string) => boolean
  readonly run: (effect: Effect.Effect<void>) => void
}) =>
  Effect.gen(function*() {
    const { readiness, isKnown, run } = options
    const watchers = new Set<Watcher>()
    const servingStatus = (ready: boolean, service: string): ServingStatus => !isKnown(service) ? "SERVICE_UNKNOWN" : ready ? "SERVING" : "NOT_SERVING"
    const push = (watcher: Watcher, next: ServingStatus) => {
      if (watcher.last === next || watcher.call.cancelled) return
      watcher.last = next
      watcher.call.write({ status: next })
    }
    const badRequest = serviceError(status.INVALID_ARGUMENT, "expected a grpc.health.v1.HealthCheckRequest")

    const poll = Effect.gen(function*() {
      if (watchers.size === 0) return
      const { ready } = yield* readiness
      for (const watcher of watchers) push(watcher, servingStatus(ready, watcher.service))
    })
    yield* Effect.forkScoped(Effect.repeat(poll, Schedule.spaced(WATCH_POLL)))

    const implementation: UntypedServiceImplementation = {
      Check: (call: ServerUnaryCall<unknown, HealthCheckResponse>, callback: sendUnaryData<HealthCheckResponse>) =>
        run(Effect.gen(function*() {
          const request = decodeRequest(call.request)
          if (Option.isNone(request)) return callback(badRequest)
          const { service } = request.value
          if (!isKnown(service)) return callback(serviceError(status.NOT_FOUND, `unknown service "${service}"`))
          const { ready } = yield* readiness
          callback(null, { status: ready ? "SERVING" : "NOT_SERVING" })
        })),
      Watch: (call: ServerWritableStream<unknown, HealthCheckResponse>) =>
        run(Effect.gen(function*() {
          const request = decodeRequest(call.request)
          if (Option.isNone(request)) return void call.emit("error", badRequest)
          const watcher: Watcher = { service: request.value.service, call, last: undefined }
          watchers.add(watcher)
          call.on("cancelled", () => watchers.delete(watcher))
          const { ready } = yield* readiness
          push(watcher, servingStatus(ready, watcher.service))
        }))
    }

    /** Draining: tell every watcher NOT_SERVING and end its stream, so graceful shutdown is not held open by them. */
    const close = Effect.sync(() => {
      for (const watcher of watchers) {
        push(watcher, "NOT_SERVING")
        if (!watcher.call.cancelled) watcher.call.end()
      }
      watchers.clear()
    })
    return { implementation, close }
  })
