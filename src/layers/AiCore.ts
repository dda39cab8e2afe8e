import { Context, Duration, Effect, Layer, Option, type Scope } from "effect"
import { Counter } from "prom-client"
import { AiCoreFallback, AiCoreSetupError } from "../schemas/aicore.ts"
import { AicMetrics } from "./aicore/metrics.ts"
import { type AiCoreClientStats, type AiCoreSessionClient, type CompressionGoal, emptyClientStats, makeAiCoreSession } from "./aicore/session.ts"
import { type AiCoreTransport, grpcTransport, loadCompressMethod } from "./aicore/transport.ts"
import type { Settings } from "../config/settings.ts"
import { AppConfig } from "./Config.ts"
import { errorMessage } from "./error-message.ts"
import { makeClient, parseTarget } from "./grpc/client.ts"
import { Health } from "./Health.ts"
import { Metrics } from "./Metrics.ts"
import { type CircuitBreaker, makeObservedCircuitBreaker } from "./resilience/circuitBreaker.ts"

export type { AiCorePolicy, AiCoreSessionClient } from "./aicore/session.ts"

export interface AiCoreService {
  /**
   * `client`: an AI Core is configured; `disabled`: none, or AI_CORE_ENABLE_COMPRESSION=false
   * (every frame falls back with reason `disabled`).
   */
  readonly kind: "client" | "disabled"
  readonly target: Option.Option<string>
  /**
   * The client of a media session: one `Compress` stream per session, shared by all of its
   * pipelines (reference-counted), closed when the last scope that opened it closes.
   */
  readonly openSession: (sessionId: string) => Effect.Effect<AiCoreSessionClient, never, Scope.Scope>
  readonly breaker: Option.Option<CircuitBreaker>
  readonly stats: () => Readonly<AiCoreClientStats>
}

const percent = (part: number, whole: number): number => whole === 0 ? 0 : Math.round((part / whole) * 10_000) / 100

/** What each request asks of compression: the configured target and quality level, when given. */
const compressionGoal = (aiCore: Settings["aiCore"]): CompressionGoal => ({
  ...Option.match(aiCore.targetSavings, { onNone: () => ({}), onSome: (targetSavings) => ({ targetSavings }) }),
  ...Option.match(aiCore.qualityLevel, { onNone: () => ({}), onSome: (qualityLevel) => ({ qualityLevel }) })
})

/** Why there is no AI Core client, as start-up and `/status` say it; None: there is one. */
const disabledReason = (aiCore: Settings["aiCore"]): Option.Option<string> => {
  if (Option.isNone(aiCore.grpcUrl)) return Option.some("not_configured")
  return aiCore.enableCompression ? Option.none() : Option.some("compression_disabled")
}

/** The `/status` section `aic_compression` (the seed's names) from the pipeline totals and the client's state. */
const statusSection = (
  service: AiCoreService,
  transport: AiCoreTransport | undefined,
  metrics: AicMetrics["Service"],
  { aic, aiCore }: Pick<Settings, "aic" | "aiCore">
) =>
  Effect.gen(function*() {
    const totals = metrics.totals()
    const stats = service.stats()
    const breakerState = Option.isSome(service.breaker) ? yield* service.breaker.value.state : "closed"
    return {
      ai_core: Option.match(disabledReason(aiCore), {
        onNone: () => "configured",
        onSome: (reason) => `${reason}: frames pass through, annotated only`
      }),
      enable_compression: aiCore.enableCompression,
      target_savings: Option.getOrNull(aiCore.targetSavings),
      quality_level: Option.getOrNull(aiCore.qualityLevel),
      mode: aic.mode,
      extension_id: aic.extensionId,
      forward_target: Option.match(aic.forwardTarget, { onNone: () => null, onSome: (t) => `${t.host}:${t.port}` }),
      pipelines: totals.pipelines,
      frames_processed: totals.framesProcessed,
      frames_compressed: totals.framesCompressed,
      compression_rate_percent: percent(totals.framesCompressed, totals.framesProcessed),
      average_compression_ratio: totals.framesCompressed === 0
        ? null
        : Math.round((totals.compressedBytes / Math.max(1, totals.originalBytes)) * 10_000) / 10_000,
      bandwidth_saved_bytes: totals.bandwidthSavedBytes,
      total_bandwidth_saved_mb: (totals.bandwidthSavedBytes / 1_000_000).toFixed(2),
      fallbacks: totals.fallbacks,
      packets_forwarded: totals.packetsForwarded,
      packets_dropped: totals.packetsDropped,
      payload_rejects: totals.payloadRejects,
      bytes_in: totals.bytesIn,
      bytes_out: totals.bytesOut,
      grpc_stats: {
        target: Option.getOrNull(service.target),
        channel: transport === undefined ? null : transport.connectivity(),
        streams: stats.sessions,
        connected: stats.connected,
        total_requests: stats.requests,
        successful_requests: stats.answered,
        failed_requests: stats.failed,
        success_rate_percent: percent(stats.answered, stats.answered + stats.failed),
        avg_latency_ms: stats.answered + stats.failed === 0 ? 0 : Math.round((stats.latencyMsTotal / (stats.answered + stats.failed)) * 1000) / 1000,
        late_results: stats.lateResults,
        invalid_results: stats.invalidResults,
        reconnects: stats.reconnects,
        circuit_breaker_state: breakerState,
        circuit_breaker_open: breakerState === "open"
      }
    }
  })

/**
 * The AI Core client over `transport`: the shared circuit breaker `ai_core` (AI_CORE_BREAKER_*
 * from config, state on `auralink_circuit_breaker_state{name="ai_core"}`), one session client
 * per media session (see `aicore/session.ts`), the non-critical readiness check `ai_core`, the
 * `/status` section `aic_compression` and `auralink_aic_grpc_reconnects_total`.
 */
export const makeAiCore = (transport: AiCoreTransport): Effect.Effect<AiCoreService, never, AppConfig | Health | Metrics | AicMetrics | Scope.Scope> =>
  Effect.gen(function*() {
    const config = yield* AppConfig
    const { aiCore } = config
    const goal = compressionGoal(aiCore)
    const health = yield* Health
    const { registry } = yield* Metrics
    const metrics = yield* AicMetrics
    yield* Effect.addFinalizer(() => Effect.sync(() => transport.close()))
    const breaker = yield* makeObservedCircuitBreaker(registry, {
      name: "ai_core",
      label: "AI Core",
      failureThreshold: aiCore.breakerFailures,
      resetTimeoutMs: aiCore.breakerResetMs,
      whileOpen: `frames pass through for ${aiCore.breakerResetMs} ms, then one probe`,
      // A call turned away before it reached the AI Core (too many in flight) or cut by our own
      // close proves nothing about the AI Core.
      isFailure: (error) => !(error instanceof AiCoreFallback && (error.reason === "overloaded" || error.reason === "closed"))
    })
    const stats = emptyClientStats()
    new Counter({
      name: "auralink_aic_grpc_reconnects_total",
      help: "AI Core streams re-opened after they ended",
      registers: [registry],
      collect() {
        this.reset()
        this.inc(stats.reconnects)
      }
    })
    const sessions = new Map<string, { readonly client: AiCoreSessionClient; refs: number }>()

    const acquire = (sessionId: string) =>
      Effect.suspend(() => {
        const existing = sessions.get(sessionId)
        if (existing !== undefined) {
          existing.refs++
          return Effect.succeed(existing.client)
        }
        return makeAiCoreSession({
          sessionId,
          transport,
          breaker,
          metrics,
          stats,
          deadlineMs: aiCore.deadlineMs,
          maxInFlight: aiCore.maxInFlight,
          reconnectBaseMs: aiCore.reconnectBaseMs,
          reconnectMaxMs: aiCore.reconnectMaxMs,
          goal
        }).pipe(Effect.tap((client) => Effect.sync(() => sessions.set(sessionId, { client, refs: 1 }))))
      })
    const release = (sessionId: string) =>
      Effect.suspend(() => {
        const entry = sessions.get(sessionId)
        if (entry === undefined || --entry.refs > 0) return Effect.void
        sessions.delete(sessionId)
        return entry.client.close
      })
    yield* Effect.addFinalizer(() => Effect.forEach([...sessions.values()], (s) => s.client.close, { discard: true }))

    const service: AiCoreService = {
      kind: "client",
      target: Option.some(transport.target),
      openSession: (sessionId) => Effect.acquireRelease(acquire(sessionId), () => release(sessionId)),
      breaker: Option.some(breaker),
      stats: () => stats
    }
    yield* health.register({
      name: "ai_core",
      critical: false,
      check: Effect.gen(function*() {
        if ((yield* breaker.state) === "open") return yield* Effect.fail("circuit breaker open")
        if (!transport.reachable()) return yield* Effect.fail(`channel ${transport.connectivity()}`)
      })
    })
    yield* health.section("aic_compression", statusSection(service, transport, metrics, config))
    // Connect now, so a session's first frames do not spend their deadline on the handshake.
    transport.reachable()
    yield* Effect.logInfo(`AI Core at ${transport.target}`)
    return service
  })

/** No AI Core configured (or compression off): every frame passes through (fallback `disabled`); the pipeline still annotates. */
export const disabledSession = (sessionId: string, detail = "no AI Core configured"): AiCoreSessionClient => ({
  sessionId,
  call: () => Effect.fail(new AiCoreFallback({ reason: "disabled", detail })),
  policy: { deadline: Duration.infinity, breaker: Option.none() },
  close: Effect.void
})

const makeDisabled = Effect.gen(function*() {
  const config = yield* AppConfig
  const off = Option.getOrUndefined(disabledReason(config.aiCore)) === "compression_disabled"
  const detail = off ? "compression disabled (AI_CORE_ENABLE_COMPRESSION=false)" : "no AI Core configured"
  const stats = emptyClientStats()
  const service: AiCoreService = {
    kind: "disabled",
    target: Option.none(),
    openSession: (sessionId) => Effect.succeed(disabledSession(sessionId, detail)),
    breaker: Option.none(),
    stats: () => stats
  }
  const metrics = yield* AicMetrics
  yield* (yield* Health).section("aic_compression", statusSection(service, undefined, metrics, config))
  yield* Effect.logInfo(
    off
      ? "AI Core compression disabled (AI_CORE_ENABLE_COMPRESSION=false): video frames pass through, annotated only"
      : "AI Core not configured (AI_CORE_GRPC_URL unset): video frames pass through, annotated only"
  )
  return service
})

/** The grpc-js client for `url` (`host:port`, `grpc://`, `grpcs://`), closed with the layer. */
const grpcClientTransport = (url: string): Effect.Effect<AiCoreTransport, AiCoreSetupError, AppConfig> =>
  Effect.gen(function*() {
    const { aiCore } = yield* AppConfig
    const method = yield* Effect.try({
      try: loadCompressMethod,
      catch: (error) => new AiCoreSetupError({ message: `proto/aicore.proto: ${errorMessage(error)}` })
    })
    const client = makeClient(url, { baseMs: aiCore.reconnectBaseMs, maxMs: aiCore.reconnectMaxMs })
    return grpcTransport(client, method, parseTarget(url).target)
  })

/**
 * The AI Core client the AIC pipeline uses (`AicMetrics` comes with it): grpc-js to
 * AI_CORE_GRPC_URL when set and compression is enabled, else `disabled`.
 */
export class AiCore extends Context.Service<AiCore, AiCoreService>()("auralink/AiCore") {
  /** Over any transport (the benchmark's in-process AI Core); needs AppConfig, Health, Metrics, AicMetrics. */
  static readonly layerTransport = (transport: AiCoreTransport) => Layer.effect(AiCore, makeAiCore(transport))
  static readonly layerGrpc = (url: string) => Layer.effect(AiCore, Effect.flatMap(grpcClientTransport(url), makeAiCore))
  static readonly layerDisabled = Layer.effect(AiCore, makeDisabled)
  static readonly layer = Layer.unwrap(
    Effect.map(
      AppConfig,
      ({ aiCore }) =>
        Option.match(Option.filter(aiCore.grpcUrl, () => aiCore.enableCompression), { onNone: () => AiCore.layerDisabled, onSome: AiCore.layerGrpc })
    )
  ).pipe(
    Layer.provideMerge(AicMetrics.layer)
  )
}
