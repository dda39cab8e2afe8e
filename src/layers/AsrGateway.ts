import * as grpc from "@grpc/grpc-js"
import { Effect, type Scope } from "effect"
import { AudioSinkError } from "../schemas/asr.ts"
import { errorMessage } from "./error-message.ts"
import { makeClient, parseTarget } from "./grpc/client.ts"
import { loadMethod } from "./grpc/proto.ts"
import { asrMetrics } from "./asr/metrics.ts"
import { type AsrSessionHandle, makeAsrSession } from "./asr/session.ts"
import { type AudioSinkService, streamKey } from "./asr/types.ts"
import { AppConfig } from "./Config.ts"
import { Health } from "./Health.ts"
import { Metrics } from "./Metrics.ts"
import { type CircuitBreaker, makeObservedCircuitBreaker } from "./resilience/circuitBreaker.ts"

/** What `makeAsrGateway` returns: an `AudioSinkService` plus live per-producer handles (for tests and `/status`). */
export interface AsrGatewayService extends AudioSinkService {
  readonly kind: "asr_gateway"
  /** Open streams by `streamKey` (`<sessionId>/<producerId>`). */
  readonly streams: Effect.Effect<ReadonlyMap<string, AsrSessionHandle>>
  readonly breaker: CircuitBreaker
}

/**
 * The ASR gateway client (grpc-js, `proto/asr.proto`) behind `AudioSink` when ASR_GATEWAY_URL is
 * set: ASR_CONNECTIONS channels (HTTP/2 connections) for the process, each new stream on the one
 * carrying the fewest, one bidirectional stream per audio producer (see `asr/session.ts`),
 * one circuit breaker for the gateway (ASR_BREAKER_FAILURES consecutive connect failures open it
 * for ASR_BREAKER_RESET_MS, then one probe). Registers the non-critical readiness check
 * `asr_gateway`, the `/status` section `asr` and the `auralink_asr_*` metrics.
 */
export const makeAsrGateway = (gatewayUrl: string): Effect.Effect<AsrGatewayService, AudioSinkError, AppConfig | Health | Metrics | Scope.Scope> =>
  Effect.gen(function*() {
    const { asr } = yield* AppConfig
    const health = yield* Health
    const { registry } = yield* Metrics
    const method = yield* Effect.try({
      try: () => loadMethod("asr.proto", "auralink.asr.v1.AsrGateway", "Stream"),
      catch: (error) => new AudioSinkError({ sessionId: "", message: `proto/asr.proto: ${errorMessage(error)}` })
    })
    // A pool of connections, each with the count of streams it carries (see ASR_CONNECTIONS).
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() =>
        Array.from({ length: asr.connections }, () => ({
          client: makeClient(gatewayUrl, { baseMs: asr.reconnectBaseMs, maxMs: asr.reconnectMaxMs }, true),
          streams: 0
        }))
      ),
      (all) => Effect.sync(() => all.forEach((c) => c.client.close()))
    )
    const states = (tryToConnect: boolean) => pool.map((c) => c.client.getChannel().getConnectivityState(tryToConnect))
    const failing = (state: grpc.connectivityState) => state === grpc.connectivityState.TRANSIENT_FAILURE || state === grpc.connectivityState.SHUTDOWN
    const worstState = (all: ReadonlyArray<grpc.connectivityState>) =>
      all.find(failing) ?? all.find((s) => s !== grpc.connectivityState.READY) ?? grpc.connectivityState.READY
    const metrics = asrMetrics(registry)
    const breaker = yield* makeObservedCircuitBreaker(registry, {
      name: "asr_gateway",
      label: "ASR gateway",
      failureThreshold: asr.breakerFailures,
      resetTimeoutMs: asr.breakerResetMs,
      whileOpen: `no connection attempts for ${asr.breakerResetMs} ms`
    })
    const streams = new Map<string, AsrSessionHandle>()
    const target = parseTarget(gatewayUrl).target

    yield* health.register({
      name: "asr_gateway",
      critical: false,
      check: Effect.gen(function*() {
        if ((yield* breaker.state) === "open") return yield* Effect.fail("circuit breaker open")
        const state = states(true).find(failing)
        if (state !== undefined) return yield* Effect.fail(`channel ${grpc.connectivityState[state]}`)
      })
    })
    yield* health.section(
      "asr",
      Effect.gen(function*() {
        const all = yield* Effect.forEach([...streams.values()], (s) => s.stats)
        const sum = (pick: (s: (typeof all)[number]) => number) => all.reduce((n, s) => n + pick(s), 0)
        return {
          sink: "asr_gateway",
          target,
          // The least healthy connection's state.
          channel: grpc.connectivityState[worstState(states(false))],
          connections: pool.length,
          breaker: yield* breaker.state,
          streams: all.length,
          connected: all.filter((s) => s.connected).length,
          chunksSent: sum((s) => s.sent),
          chunksReplayed: sum((s) => s.replayed),
          chunksDropped: sum((s) => s.dropped),
          reconnects: sum((s) => s.reconnects),
          transcripts: sum((s) => s.transcripts),
          bufferedMs: Math.round(sum((s) => s.bufferedMs))
        }
      })
    )

    // Streams still open when the layer goes away are closed (flushed, half-closed) first.
    yield* Effect.addFinalizer(() => Effect.forEach([...streams.values()], (s) => s.close, { concurrency: "unbounded", discard: true }))
    yield* Effect.logInfo(`audio sink: ASR gateway at ${target}`)

    const openStream: AudioSinkService["openStream"] = (streamOf) =>
      Effect.gen(function*() {
        const key = streamKey(streamOf)
        if (streams.has(key)) {
          return yield* new AudioSinkError({ sessionId: streamOf.sessionId, message: `an ASR stream is already open for producer ${streamOf.producerId}` })
        }
        const connection = pool.reduce((least, c) => (c.streams < least.streams ? c : least))
        const forget = Effect.sync(() => {
          if (streams.delete(key)) connection.streams--
        })
        const handle = yield* Effect.acquireRelease(
          makeAsrSession({
            ...streamOf,
            client: connection.client,
            method,
            breaker,
            metrics,
            deadlineMs: asr.deadlineMs,
            reconnectBaseMs: asr.reconnectBaseMs,
            reconnectMaxMs: asr.reconnectMaxMs,
            replayBufferMs: asr.replayBufferMs,
            queueCapacity: asr.queueCapacity
          }).pipe(Effect.tap((h) =>
            Effect.sync(() => {
              streams.set(key, h)
              connection.streams++
            })
          )),
          (h) => h.close.pipe(Effect.ensuring(forget))
        )
        return { ...handle, close: handle.close.pipe(Effect.ensuring(forget)) }
      })

    const service: AsrGatewayService = { kind: "asr_gateway", openStream, streams: Effect.sync(() => streams), breaker }
    return service
  })
