import { Effect } from "effect"
import { count, key, ms, rule, secret, within } from "./key.ts"

/**
 * The LiveKit server. Room sync needs the URL and the key/secret pair (LiveKit signs with both);
 * webhooks need the pair only. A missing part turns the feature off (said at start-up and in
 * `/status`) rather than stopping start-up: the seed's own config file names no secret.
 */
export const webrtcServer = Effect.all({
  url: key("WEBRTC_SERVER_URL", "auralink.webrtc_server.url").endpoint(),
  apiKey: secret("WEBRTC_API_KEY", "auralink.webrtc_server.api_key").optional(),
  apiSecret: secret("WEBRTC_API_SECRET", "auralink.webrtc_server.api_secret").optional(),
  /** One LiveKit API call that takes longer fails (the sync counts it failed). */
  requestTimeoutMs: key("WEBRTC_REQUEST_TIMEOUT_MS", "auralink.webrtc_server.request_timeout_ms").int(5000, ms)
})

const syncIntervalMs = key("ROOM_SYNC_INTERVAL_MS", "auralink.rooms.sync_interval_ms").int(10_000, rule("milliseconds >= 100", (n) => n >= 100))

export const rooms = Effect.all({
  /** One reconcile of LiveKit's rooms and participants into the state store, on the instance holding the lease. */
  syncIntervalMs,
  /** Rooms listed at once while one sync lists participants. */
  syncConcurrency: key("ROOM_SYNC_CONCURRENCY", "auralink.rooms.sync_concurrency").int(8, rule("a whole number 1-64", within(1, 64))),
  staleCleanupIntervalMs: key("ROOM_STALE_CLEANUP_INTERVAL_MS", "auralink.rooms.stale_cleanup_interval_ms").int(60_000, ms),
  /** How long a room must have been gone from LiveKit (with no live session of ours) before cleanup removes it. */
  staleGraceMs: key("ROOM_STALE_GRACE_MS", "auralink.rooms.stale_grace_ms").int(60_000, ms),
  /** A replayed webhook (same event id) within this window changes nothing. */
  webhookDedupMs: key("ROOM_WEBHOOK_DEDUP_MS", "auralink.rooms.webhook_dedup_ms").int(86_400_000, ms)
})

export const participants = Effect.all({
  qosHistoryCap: key("QOS_HISTORY_CAP", "auralink.participants.qos_history_cap").int(100, rule("a whole number 1-10000", within(1, 10_000))),
  /** A participant not heard from (QoS, presence, capabilities, membership) within this is `offline`. */
  presenceTimeoutMs: key("PRESENCE_TIMEOUT_MS", "auralink.participants.presence_timeout_ms").int(60_000, ms),
  /** mediasoup stats of sessions naming a participant become QoS samples this often. */
  qosSampleIntervalMs: key("QOS_SAMPLE_INTERVAL_MS", "auralink.participants.qos_sample_interval_ms").int(5000, ms),
  /** Entries the local participant-state cache holds (least recently used dropped first). */
  cacheSize: key("PARTICIPANT_CACHE_SIZE", "auralink.participants.cache_size").int(10_000, count)
})
