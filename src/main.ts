import { Cause, Context, Effect, Exit, Layer } from "effect"
import { AuraIdGrpcLive } from "./adapters/grpc/auraid.ts"
import { ParticipantGrpcLive } from "./adapters/grpc/participants.ts"
import { RoomGrpcLive } from "./adapters/grpc/rooms.ts"
import { SessionGrpcLive } from "./adapters/grpc/sessions.ts"
import { DemoRoutes } from "./adapters/http/demo.ts"
import { ApiRoutes } from "./adapters/http/routes.ts"
import { AiCore } from "./layers/AiCore.ts"
import { AuraIdResolver } from "./layers/AuraIdResolver.ts"
import { Cluster } from "./layers/Cluster.ts"
import { ClusterMetrics } from "./layers/cluster/metrics.ts"
import { AudioMetrics } from "./layers/audio/metrics.ts"
import { AudioDecoders } from "./layers/AudioDecoders.ts"
import { AudioSink } from "./layers/AudioSink.ts"
import { AuthMetrics } from "./layers/auth/metrics.ts"
import { AuthStore } from "./layers/AuthStore.ts"
import { AppConfig } from "./layers/Config.ts"
import { Dashboard } from "./layers/Dashboard.ts"
import { Database } from "./layers/Database.ts"
import { GrpcServer } from "./layers/GrpcServer.ts"
import { Health } from "./layers/Health.ts"
import { httpListeners } from "./layers/HttpServer.ts"
import { Instance } from "./layers/Instance.ts"
import { LiveKit } from "./layers/LiveKit.ts"
import { LoggerLive } from "./layers/Logger.ts"
import { MediaServer } from "./layers/MediaServer.ts"
import { ParticipantStore } from "./layers/ParticipantStore.ts"
import { Metrics } from "./layers/Metrics.ts"
import { RateLimiter } from "./layers/RateLimiter.ts"
import { RoomMetrics } from "./layers/rooms/metrics.ts"
import { RoomStore } from "./layers/RoomStore.ts"
import { SessionEvents } from "./layers/sessions/events.ts"
import { SessionMetrics } from "./layers/sessions/metrics.ts"
import { Sessions } from "./layers/SessionStore.ts"
import { StateStore } from "./layers/StateStore.ts"
import { TokenSigner } from "./layers/Tokens.ts"
import { TracingLive } from "./layers/Tracing.ts"
import { AicIngest } from "./programs/aic/ingest.ts"
import { Membership } from "./programs/cluster/membership.ts"
import { EventStreams } from "./programs/audio/event-streams.ts"
import { AudioIngest } from "./programs/audio/ingest.ts"
import { RoomMediaStateLive } from "./programs/rooms/media-state.ts"
import { RoomSyncLive } from "./programs/rooms/room-sync.ts"
import { logFirstRunNotes } from "./programs/first-run.ts"
import { MediaLifecycleLive } from "./programs/media/lifecycle.ts"
import { WebRtcResources } from "./programs/whip/resources.ts"
import { SessionDrain } from "./programs/sessions/drain.ts"
import { SweeperLive } from "./programs/sessions/sweep.ts"
import { armShutdownDeadline, awaitShutdownSignal } from "./programs/shutdown.ts"

// The one composition root: the whole layer graph, each layer provided once. Adapters (src/adapters)
// require services and provide none; everything they need is built here, below the listeners.

/** The session store and cache, change events and metrics (with the /status section), and the expiry sweeper. */
const SessionServices = SweeperLive.pipe(
  Layer.provideMerge(Layer.mergeAll(SessionEvents.layer, SessionMetrics.layer)),
  Layer.provideMerge(Sessions.layer)
)

/** Rooms and participants: LiveKit room sync (one instance at a time), webhooks and this instance's media state per room, over the room store. */
const RoomServices = Layer.mergeAll(RoomSyncLive, RoomMediaStateLive).pipe(
  Layer.provideMerge(RoomMetrics.layer),
  Layer.provideMerge(Layer.mergeAll(RoomStore.layer, LiveKit.layer))
)

/** This instance among the others sharing Postgres and Redis: registration and heartbeats, capacity, lost instances' sessions. */
const ClusterServices = Membership.layer.pipe(Layer.provideMerge(Layer.mergeAll(Cluster.layer, ClusterMetrics.layer)))

/** Audio ingress, the AIC video pipeline (with its AI Core client) and WHIP/WHEP resources over the media server and its session lifecycle. */
const MediaServices = Layer.mergeAll(AudioIngest.layer, AicIngest.layer, WebRtcResources.layer).pipe(
  // Below the ingest layers: released after them (media closes last).
  Layer.provideMerge(MediaLifecycleLive),
  Layer.provideMerge(Layer.mergeAll(MediaServer.layer, AiCore.layer)),
  Layer.provideMerge(Layer.mergeAll(AudioMetrics.layer, AudioDecoders.layer))
)

/**
 * The services the HTTP API and the gRPC SessionService share: sessions, media, the SSE stream
 * caps, auth and the rate limiter. Built below both listeners: `HttpRouter.serve` builds its app
 * with a forked memo map, so a layer first built inside it would be private to the HTTP server;
 * built here, REST and gRPC share one session store, cache and set of metrics.
 */
export const SharedServices = SessionDrain.layer.pipe(
  // Released after the listeners, before the services: ends what requests in flight started.
  Layer.provideMerge(Layer.mergeAll(EventStreams.layer, RoomServices)),
  // Below the rooms: their media state reads the media server's stats.
  Layer.provideMerge(MediaServices),
  // Below the media: a session is admitted (and owned) before it gets media.
  Layer.provideMerge(ClusterServices),
  Layer.provideMerge(Layer.mergeAll(SessionServices, AuthStore.layer, TokenSigner.layer, AuthMetrics.layer, RateLimiter.layer, ParticipantStore.layer)),
  Layer.provideMerge(Layer.mergeAll(AuraIdResolver.layer, Instance.layer))
)

/** Everything below the listeners: the shared services over Postgres, the state store and the AudioSink, over health and metrics. */
export const AppServices = Dashboard.layer.pipe(
  // The Dashboard registration reads the shared services' load; released before them (deregisters first).
  Layer.provideMerge(SharedServices),
  Layer.provideMerge(Layer.mergeAll(Database.layer, StateStore.layer, AudioSink.layer)),
  Layer.provideMerge(Layer.mergeAll(Health.layer, Metrics.layer))
)

/** The public HTTP listener (the API and the demo, with the optional metrics listener) and the gRPC server with its services. */
const Listeners = Layer.mergeAll(
  httpListeners(Layer.mergeAll(ApiRoutes, DemoRoutes)),
  Layer.mergeAll(SessionGrpcLive, RoomGrpcLive, ParticipantGrpcLive, AuraIdGrpcLive).pipe(Layer.provideMerge(GrpcServer.layer))
)

/**
 * The whole service as one layer. Built bottom-up (health and metrics, then Postgres and the
 * state store, then the services, then the HTTP and gRPC listeners); released top-down, so
 * listeners stop before the services and stores they use go away.
 */
export const AppLayer = Listeners.pipe(
  Layer.provideMerge(AppServices),
  Layer.provide(TracingLive)
)

/**
 * Runs until SIGTERM/SIGINT, then drains: readiness 503, new sessions, transports and producers
 * refused (503, `Connection: close` on every response), clients told `going_away` and their media
 * kept until they leave or DRAIN_TIMEOUT_MS passes (a second signal cuts it short), the rest ended
 * (reason `shutdown`); then listeners close, layers release, exit 0.
 */
export const main = Effect.gen(function*() {
  const config = yield* AppConfig
  // Unknown keys and unset substitutions of the file: one warning line each, before anything starts.
  yield* Effect.forEach(config.warnings, ({ key, message }) => Effect.logWarning(message).pipe(Effect.annotateLogs({ event: "config_warning", key })), {
    discard: true
  })
  const services = yield* Layer.build(AppLayer)
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
  const drain = Context.get(services, SessionDrain)
  yield* drain.begin
  yield* Effect.raceFirst(drain.finished, Effect.andThen(awaitShutdownSignal, drain.hurry).pipe(Effect.andThen(drain.finished)))
  yield* Effect.logInfo("shutdown: drained")
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
