import { Effect } from "effect"
import { between, count, key, ms, nonNegative, rule } from "./key.ts"

export const sessions = Effect.all({
  /** Default idle timeout of a session (its config may override it within the same bounds). */
  idleTimeoutSeconds: key("SESSION_IDLE_TIMEOUT_SECONDS", "auralink.sessions.idle_timeout_seconds").int(300, between("seconds", 10, 86_400)),
  /** Context entries kept per session; the oldest are dropped. */
  contextCap: key("SESSION_CONTEXT_CAP", "auralink.sessions.context_cap").int(100, between("a whole number", 1, 10_000)),
  sweepIntervalMs: key("SESSION_SWEEP_INTERVAL_MS", "auralink.sessions.sweep_interval_ms").int(10_000, ms),
  cacheTtlMs: key("SESSION_CACHE_TTL_MS", "auralink.sessions.cache_ttl_ms").int(5000, rule("milliseconds >= 0 (0 disables the cache)", nonNegative)),
  cacheMax: key("SESSION_CACHE_MAX", "auralink.sessions.cache_max").int(10_000, rule("a whole number >= 0 (0 disables the cache)", nonNegative))
})

/** What one client may hold at once (README "Limits"); beyond them: 429 problem naming the setting. */
export const limits = Effect.all({
  /** A pending session with no producer by then is expired by the sweeper. */
  pendingSessionTimeoutSeconds: key("PENDING_SESSION_TIMEOUT_SECONDS", "auralink.limits.pending_session_timeout_seconds")
    .int(60, between("seconds", 1, 86_400)),
  maxPendingSessionsPerUser: key("MAX_PENDING_SESSIONS_PER_USER", "auralink.limits.max_pending_sessions_per_user").int(8, count),
  maxPendingSessionsPerDevice: key("MAX_PENDING_SESSIONS_PER_DEVICE", "auralink.limits.max_pending_sessions_per_device").int(8, count),
  /** Pending + active. */
  maxOpenSessionsPerUser: key("MAX_OPEN_SESSIONS_PER_USER", "auralink.limits.max_open_sessions_per_user").int(16, count),
  maxOpenSessionsPerDevice: key("MAX_OPEN_SESSIONS_PER_DEVICE", "auralink.limits.max_open_sessions_per_device").int(8, count),
  /** WebRTC + plain transports the client made (server-side ones not counted). */
  maxTransportsPerSession: key("MAX_TRANSPORTS_PER_SESSION", "auralink.limits.max_transports_per_session").int(4, count),
  /** Producers + data producers. */
  maxProducersPerSession: key("MAX_PRODUCERS_PER_SESSION", "auralink.limits.max_producers_per_session").int(8, count),
  maxSseStreamsPerSession: key("MAX_SSE_STREAMS_PER_SESSION", "auralink.limits.max_sse_streams_per_session").int(4, count),
  maxSseStreamsPerUser: key("MAX_SSE_STREAMS_PER_USER", "auralink.limits.max_sse_streams_per_user").int(16, count)
})

/** Requests per minute: auth by client IP, session and default by user. */
export const rateLimit = Effect.all({
  authPerMinute: key("RATE_LIMIT_AUTH_PER_MINUTE", "auralink.rate_limit.auth_per_minute").int(100, count),
  sessionPerMinute: key("RATE_LIMIT_SESSION_PER_MINUTE", "auralink.rate_limit.session_per_minute").int(300, count),
  defaultPerMinute: key("RATE_LIMIT_DEFAULT_PER_MINUTE", "auralink.rate_limit.default_per_minute").int(500, count)
})
