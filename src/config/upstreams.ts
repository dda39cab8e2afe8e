import { Effect, Option } from "effect"
import { between, count, key, ms, nonNegative, rule, secret, within } from "./key.ts"

export type AicMode = "annotate" | "replace"

/** `host:port` (IPv6 hosts in brackets); undefined when it is not one. */
const hostPort = (value: string): { readonly host: string; readonly port: number } | undefined => {
  const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(value.trim())
  const port = Number(match?.[3])
  const host = match?.[1] ?? match?.[2]
  return host === undefined || !Number.isInteger(port) || port < 1 || port > 65535 ? undefined : { host, port }
}

export const asr = Effect.all({
  /** None: audio goes to the embedded recording sink (WAV files under DATA_DIR/recordings). */
  gatewayUrl: key("ASR_GATEWAY_URL", "auralink.asr.gateway_url").optional(),
  /** Connect deadline of a stream, and the longest a chunk write may wait before the stream counts as stalled. */
  deadlineMs: key("ASR_DEADLINE_MS", "auralink.asr.deadline_ms").int(5000, ms),
  reconnectBaseMs: key("ASR_RECONNECT_BASE_MS", "auralink.asr.reconnect_base_ms").int(100, ms),
  reconnectMaxMs: key("ASR_RECONNECT_MAX_MS", "auralink.asr.reconnect_max_ms").int(5000, ms),
  /** Circuit breaker: consecutive failures that open it, and how long it stays open before one probe. */
  breakerFailures: key("ASR_BREAKER_FAILURES", "auralink.asr.breaker_failures").int(5, count),
  breakerResetMs: key("ASR_BREAKER_RESET_MS", "auralink.asr.breaker_reset_ms").int(60_000, ms),
  /** Audio (ms) kept per session and re-sent after a reconnect; beyond it the oldest chunks are dropped. */
  replayBufferMs: key("ASR_REPLAY_BUFFER_MS", "auralink.asr.replay_buffer_ms").int(5000, rule("milliseconds >= 0", nonNegative)),
  /** Chunks a session's `send` may queue before it waits (back-pressure). */
  queueCapacity: key("ASR_QUEUE_CAPACITY", "auralink.asr.queue_capacity").int(50, count),
  /**
   * HTTP/2 connections to the gateway; each new stream goes on the one carrying the fewest. One
   * connection's flow-control window (the gateway's, 64 KB unless it says more) is refilled once
   * per round trip through both event loops: 250 streams are 8.8 MB/s, over 130 refills a second.
   * 16: with 4, 250 streams fell behind on a full 2-core machine (bench/audio-ingest: README, ASR_CONNECTIONS).
   */
  connections: key("ASR_CONNECTIONS", "auralink.asr.connections").int(16, between("a whole number", 1, 64))
})

export const aiCore = Effect.all({
  /** None: no AI Core; the AIC pipeline forwards every frame unchanged (annotate-only, fallback flag). */
  grpcUrl: key("AI_CORE_GRPC_URL", "auralink.ai_core.grpc_url").optional(),
  /** Per-frame deadline: a result not back within it is a failure and the frame passes through. */
  deadlineMs: key("AI_CORE_DEADLINE_MS", "auralink.ai_core.deadline_ms").int(10, ms),
  /** Circuit breaker: consecutive failed frames that open it, and how long it stays open before one probe. */
  breakerFailures: key("AI_CORE_BREAKER_FAILURES", "auralink.ai_core.breaker_failures").int(5, count),
  breakerResetMs: key("AI_CORE_BREAKER_RESET_MS", "auralink.ai_core.breaker_reset_ms").int(60_000, ms),
  /** Jittered exponential backoff between attempts to re-open a session's stream. */
  reconnectBaseMs: key("AI_CORE_RECONNECT_BASE_MS", "auralink.ai_core.reconnect_base_ms").int(100, ms),
  reconnectMaxMs: key("AI_CORE_RECONNECT_MAX_MS", "auralink.ai_core.reconnect_max_ms").int(5000, ms),
  /** Frames of one session awaiting a result; further frames bypass the AI Core (fallback `overloaded`). */
  maxInFlight: key("AI_CORE_MAX_IN_FLIGHT", "auralink.ai_core.max_in_flight").int(32, count),
  /** false: no frame is sent to the AI Core; every frame passes through (fallback `disabled`), as with no AI Core. */
  enableCompression: key("AI_CORE_ENABLE_COMPRESSION", "auralink.ai_core.enable_compression").flag(true),
  /** Bandwidth share the AI Core should aim to save (0-1), sent with each frame; None: the AI Core's own choice. */
  targetSavings: key("AI_CORE_TARGET_SAVINGS", "auralink.ai_core.compression.target_savings").number(rule("a number 0-1", within(0, 1))),
  /** Quality level 1 (smallest) to 10 (best) the AI Core should keep, sent with each frame; None: the AI Core's own choice. */
  qualityLevel: key("AI_CORE_QUALITY_LEVEL", "auralink.ai_core.compression.quality_level").optionalInt(rule("a whole number 1-10", within(1, 10)))
})

const AIC_FORWARD_TARGET = key("AIC_FORWARD_TARGET", "auralink.aic.forward_target")

export const aic = Effect.all({
  /** `annotate`: payload unchanged, AIC metadata only; `replace`: the AI Core's payload is forwarded. */
  mode: key("AIC_MODE", "auralink.aic.mode").literal(["annotate", "replace"], "annotate", "annotate or replace"),
  /** RFC 8285 id of the AIC element in forwarded packets (one-byte form, 1-14). */
  extensionId: key("AIC_EXTENSION_ID", "auralink.aic.extension_id")
    .int(14, rule("an RFC 8285 one-byte extension id 1-14", within(1, 14))),
  /** Where live sessions' processed video RTP is sent (`host:port`, UDP); None: live video is not processed. */
  forwardTarget: Effect.flatMap(AIC_FORWARD_TARGET.optional(), (given) => {
    if (Option.isNone(given)) return Effect.succeed(Option.none<{ readonly host: string; readonly port: number }>())
    const target = hostPort(given.value)
    return target === undefined ? AIC_FORWARD_TARGET.fail("host:port (UDP)") : Effect.succeed(Option.some(target))
  }),
  /** RTP packets buffered per pipeline between the pipeline and its sink (beyond it: dropped, counted). */
  queueCapacity: key("AIC_QUEUE_CAPACITY", "auralink.aic.queue_capacity").int(4096, count)
})

export const dashboard = Effect.all({
  url: key("DASHBOARD_URL", "auralink.dashboard.url").endpoint(),
  apiKey: secret("DASHBOARD_API_KEY", "auralink.dashboard.api_key").optional(),
  /** Where clients reach this bridge, told to the Dashboard at registration. */
  publicUrl: key("PUBLIC_URL", "auralink.dashboard.public_url").endpoint(),
  /** Heartbeat period (a period the Dashboard names when registering wins). */
  heartbeatMs: key("DASHBOARD_HEARTBEAT_MS", "auralink.dashboard.heartbeat_ms").int(10_000, ms),
  /** One Dashboard call that takes longer fails (deregistration at shutdown waits no longer). */
  timeoutMs: key("DASHBOARD_TIMEOUT_MS", "auralink.dashboard.timeout_ms").int(5000, ms),
  /** Jittered exponential backoff between registration attempts. */
  retryBaseMs: key("DASHBOARD_RETRY_BASE_MS", "auralink.dashboard.retry_base_ms").int(1000, ms),
  retryMaxMs: key("DASHBOARD_RETRY_MAX_MS", "auralink.dashboard.retry_max_ms").int(30_000, ms)
})
