/**
 * Every configuration key the service reads: its environment variable (the names users of
 * the earlier system know), where it sits in the optional HOCON file, and whether it is a
 * secret. The file is flattened onto these env names, then the real environment wins.
 */
export interface KeySpec {
  readonly env: string
  readonly hocon: string
  readonly secret?: boolean
}

export const keys = [
  // service identity
  { env: "SERVICE_NAME", hocon: "auralink.service.name" },
  { env: "ENVIRONMENT", hocon: "auralink.service.environment" },
  { env: "REGION", hocon: "auralink.service.region" },
  { env: "BRIDGE_ID", hocon: "auralink.service.bridge_id" },
  { env: "DATA_DIR", hocon: "auralink.service.data_dir" },
  { env: "SHUTDOWN_TIMEOUT_MS", hocon: "auralink.service.shutdown_timeout_ms" },
  // listeners
  { env: "HOST", hocon: "auralink.http.host" },
  { env: "PORT", hocon: "auralink.http.port" },
  { env: "HTTP_BODY_LIMIT_BYTES", hocon: "auralink.http.body_limit_bytes" },
  { env: "METRICS_PORT", hocon: "auralink.http.metrics_port" },
  { env: "HTTP_HEADERS_TIMEOUT_MS", hocon: "auralink.http.headers_timeout_ms" },
  { env: "HTTP_REQUEST_TIMEOUT_MS", hocon: "auralink.http.request_timeout_ms" },
  { env: "HTTP_KEEPALIVE_TIMEOUT_MS", hocon: "auralink.http.keepalive_timeout_ms" },
  { env: "HTTP_MAX_CONNECTIONS", hocon: "auralink.http.max_connections" },
  { env: "CORS_ORIGINS", hocon: "auralink.http.cors_origins" },
  { env: "GRPC_PORT", hocon: "auralink.grpc.port" },
  // logging and tracing
  { env: "LOG_LEVEL", hocon: "auralink.log.level" },
  { env: "OTEL_EXPORTER_OTLP_ENDPOINT", hocon: "auralink.tracing.otlp_endpoint" },
  // features
  { env: "ENABLE_AIC", hocon: "auralink.features.enable_aic" },
  { env: "ENABLE_SIP", hocon: "auralink.features.enable_sip" },
  { env: "ENABLE_RTMP", hocon: "auralink.features.enable_rtmp" },
  { env: "DEMO_ENABLED", hocon: "auralink.demo.enabled" },
  // database
  { env: "DATABASE_URL", hocon: "auralink.database.url", secret: true },
  { env: "DB_HOST", hocon: "auralink.database.host" },
  { env: "DB_PORT", hocon: "auralink.database.port" },
  { env: "DB_NAME", hocon: "auralink.database.name" },
  { env: "DB_USER", hocon: "auralink.database.username" },
  { env: "DB_PASSWORD", hocon: "auralink.database.password", secret: true },
  { env: "PGPOOL_MIN_INGRESS", hocon: "auralink.database.pool_min" },
  { env: "PGPOOL_MAX_INGRESS", hocon: "auralink.database.pool_max" },
  { env: "PG_CONN_TIMEOUT_MS", hocon: "auralink.database.connect_timeout_ms" },
  { env: "PG_IDLE_TIMEOUT_MS", hocon: "auralink.database.idle_timeout_ms" },
  { env: "PG_CONNECT_RETRIES", hocon: "auralink.database.connect_retries" },
  // redis
  { env: "REDIS_URL", hocon: "auralink.redis.url", secret: true },
  { env: "REDIS_HOST", hocon: "auralink.redis.host" },
  { env: "REDIS_PORT", hocon: "auralink.redis.port" },
  { env: "REDIS_RECONNECT_BASE_MS", hocon: "auralink.redis.reconnect_base_ms" },
  { env: "REDIS_RECONNECT_MAX_MS", hocon: "auralink.redis.reconnect_max_ms" },
  { env: "REDIS_COMMAND_TIMEOUT_MS", hocon: "auralink.redis.command_timeout_ms" },
  // auth
  { env: "JWT_SECRET", hocon: "auralink.auth.jwt_secret", secret: true },
  { env: "JWT_ALGORITHM", hocon: "auralink.auth.jwt_algorithm" },
  { env: "JWT_PRIVATE_KEY", hocon: "auralink.auth.jwt_private_key", secret: true },
  { env: "JWT_KEY_ID", hocon: "auralink.auth.jwt_key_id" },
  { env: "JWT_ISSUER", hocon: "auralink.auth.jwt_issuer" },
  { env: "JWT_AUDIENCE", hocon: "auralink.auth.jwt_audience" },
  { env: "ACCESS_TOKEN_TTL_SECONDS", hocon: "auralink.auth.access_token_ttl_seconds" },
  { env: "REFRESH_TOKEN_TTL_SECONDS", hocon: "auralink.auth.refresh_token_ttl_seconds" },
  { env: "AUTH_PROVISIONING_KEY", hocon: "auralink.auth.provisioning_key", secret: true },
  // sessions
  { env: "SESSION_IDLE_TIMEOUT_SECONDS", hocon: "auralink.sessions.idle_timeout_seconds" },
  { env: "SESSION_CONTEXT_CAP", hocon: "auralink.sessions.context_cap" },
  { env: "SESSION_SWEEP_INTERVAL_MS", hocon: "auralink.sessions.sweep_interval_ms" },
  { env: "SESSION_CACHE_TTL_MS", hocon: "auralink.sessions.cache_ttl_ms" },
  { env: "SESSION_CACHE_MAX", hocon: "auralink.sessions.cache_max" },
  // limits on what one client may hold (README "Limits")
  { env: "PENDING_SESSION_TIMEOUT_SECONDS", hocon: "auralink.limits.pending_session_timeout_seconds" },
  { env: "MAX_PENDING_SESSIONS_PER_USER", hocon: "auralink.limits.max_pending_sessions_per_user" },
  { env: "MAX_PENDING_SESSIONS_PER_DEVICE", hocon: "auralink.limits.max_pending_sessions_per_device" },
  { env: "MAX_OPEN_SESSIONS_PER_USER", hocon: "auralink.limits.max_open_sessions_per_user" },
  { env: "MAX_OPEN_SESSIONS_PER_DEVICE", hocon: "auralink.limits.max_open_sessions_per_device" },
  { env: "MAX_TRANSPORTS_PER_SESSION", hocon: "auralink.limits.max_transports_per_session" },
  { env: "MAX_PRODUCERS_PER_SESSION", hocon: "auralink.limits.max_producers_per_session" },
  { env: "MAX_SSE_STREAMS_PER_SESSION", hocon: "auralink.limits.max_sse_streams_per_session" },
  { env: "MAX_SSE_STREAMS_PER_USER", hocon: "auralink.limits.max_sse_streams_per_user" },
  // rate limits (requests per minute): auth by client IP, session and default by user
  { env: "RATE_LIMIT_AUTH_PER_MINUTE", hocon: "auralink.rate_limit.auth_per_minute" },
  { env: "RATE_LIMIT_SESSION_PER_MINUTE", hocon: "auralink.rate_limit.session_per_minute" },
  { env: "RATE_LIMIT_DEFAULT_PER_MINUTE", hocon: "auralink.rate_limit.default_per_minute" },
  // media
  { env: "RTC_MIN_PORT", hocon: "auralink.mediasoup.rtc_min_port" },
  { env: "RTC_MAX_PORT", hocon: "auralink.mediasoup.rtc_max_port" },
  { env: "MEDIASOUP_LISTEN_IP", hocon: "auralink.mediasoup.listen_ip" },
  { env: "MEDIASOUP_ANNOUNCED_IP", hocon: "auralink.mediasoup.announced_ip" },
  { env: "MEDIASOUP_WORKERS", hocon: "auralink.mediasoup.workers" },
  { env: "MEDIASOUP_LOG_LEVEL", hocon: "auralink.mediasoup.log_level" },
  { env: "MEDIASOUP_LOG_TAGS", hocon: "auralink.mediasoup.log_tags" },
  { env: "MEDIASOUP_WORKER_PROBE_INTERVAL_MS", hocon: "auralink.mediasoup.worker_probe_interval_ms" },
  { env: "MEDIASOUP_WORKER_TIMEOUT_MS", hocon: "auralink.mediasoup.worker_timeout_ms" },
  { env: "STUN_URLS", hocon: "auralink.mediasoup.stun_urls" },
  { env: "TURN_URLS", hocon: "auralink.mediasoup.turn_urls" },
  { env: "TURN_USERNAME", hocon: "auralink.mediasoup.turn_username" },
  { env: "TURN_CREDENTIAL", hocon: "auralink.mediasoup.turn_credential", secret: true },
  // audio pipeline supervision (a failed producer pipeline is restarted, then the session fails)
  { env: "AUDIO_PIPELINE_RESTARTS", hocon: "auralink.audio.pipeline_restarts" },
  { env: "AUDIO_PIPELINE_RESTART_BASE_MS", hocon: "auralink.audio.pipeline_restart_base_ms" },
  { env: "AUDIO_PIPELINE_RESTART_MAX_MS", hocon: "auralink.audio.pipeline_restart_max_ms" },
  // audio path
  { env: "AUDIO_DECODE_THREADS", hocon: "auralink.audio.decode_threads" },
  { env: "AUDIO_JITTER_BUFFER_MS", hocon: "auralink.audio.jitter_buffer_ms" },
  // external services
  { env: "ASR_GATEWAY_URL", hocon: "auralink.asr.gateway_url" },
  { env: "ASR_DEADLINE_MS", hocon: "auralink.asr.deadline_ms" },
  { env: "ASR_RECONNECT_BASE_MS", hocon: "auralink.asr.reconnect_base_ms" },
  { env: "ASR_RECONNECT_MAX_MS", hocon: "auralink.asr.reconnect_max_ms" },
  { env: "ASR_BREAKER_FAILURES", hocon: "auralink.asr.breaker_failures" },
  { env: "ASR_BREAKER_RESET_MS", hocon: "auralink.asr.breaker_reset_ms" },
  { env: "ASR_REPLAY_BUFFER_MS", hocon: "auralink.asr.replay_buffer_ms" },
  { env: "ASR_QUEUE_CAPACITY", hocon: "auralink.asr.queue_capacity" },
  { env: "AI_CORE_GRPC_URL", hocon: "auralink.ai_core.grpc_url" },
  { env: "AI_CORE_DEADLINE_MS", hocon: "auralink.ai_core.deadline_ms" },
  { env: "AI_CORE_BREAKER_FAILURES", hocon: "auralink.ai_core.breaker_failures" },
  { env: "AI_CORE_BREAKER_RESET_MS", hocon: "auralink.ai_core.breaker_reset_ms" },
  { env: "AI_CORE_RECONNECT_BASE_MS", hocon: "auralink.ai_core.reconnect_base_ms" },
  { env: "AI_CORE_RECONNECT_MAX_MS", hocon: "auralink.ai_core.reconnect_max_ms" },
  { env: "AI_CORE_MAX_IN_FLIGHT", hocon: "auralink.ai_core.max_in_flight" },
  // AIC compression pipeline
  { env: "AIC_MODE", hocon: "auralink.aic.mode" },
  { env: "AIC_EXTENSION_ID", hocon: "auralink.aic.extension_id" },
  { env: "AIC_FORWARD_TARGET", hocon: "auralink.aic.forward_target" },
  { env: "AIC_QUEUE_CAPACITY", hocon: "auralink.aic.queue_capacity" },
  { env: "DASHBOARD_URL", hocon: "auralink.dashboard.url" },
  { env: "DASHBOARD_API_KEY", hocon: "auralink.dashboard.api_key", secret: true },
  { env: "WEBRTC_SERVER_URL", hocon: "auralink.webrtc_server.url" },
  { env: "WEBRTC_API_KEY", hocon: "auralink.webrtc_server.api_key", secret: true }
] as const satisfies ReadonlyArray<KeySpec>

export type KeyName = (typeof keys)[number]["env"]

const secretNames: ReadonlySet<string> = new Set(
  keys.filter((k: KeySpec) => k.secret === true).map((k) => k.env)
)

export const isSecret = (name: string): boolean => secretNames.has(name)
