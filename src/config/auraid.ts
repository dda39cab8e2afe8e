import { Effect } from "effect"
import { count, countOrZero, key, ms, seconds, secret } from "./key.ts"

/** AuraID resolution through the Communication Service (see README "AuraID resolution"). */
export const auraId = Effect.all({
  /** None: AuraID resolution is off (the API answers 503, nothing calls out). */
  url: key("COMMUNICATION_SERVICE_URL", "auralink.communication.url").endpoint(),
  /** Sent as `Authorization: Bearer <key>` on every call. */
  apiKey: secret("COMMUNICATION_SERVICE_API_KEY", "auralink.communication.api_key").optional(),
  /** Per-attempt deadline of an upstream call. */
  timeoutMs: key("COMMUNICATION_SERVICE_TIMEOUT_MS", "auralink.communication.timeout_ms").int(2000, ms),
  /** Retries after a failed attempt (network, 5xx, timeout), jittered exponential from 50 ms. */
  retries: key("COMMUNICATION_SERVICE_RETRIES", "auralink.communication.retries").int(2, countOrZero),
  /** Circuit breaker: consecutive failed calls that open it, and how long it stays open before one probe. */
  breakerFailures: key("COMMUNICATION_SERVICE_BREAKER_FAILURES", "auralink.communication.breaker_failures").int(5, count),
  breakerResetMs: key("COMMUNICATION_SERVICE_BREAKER_RESET_MS", "auralink.communication.breaker_reset_ms").int(30_000, ms),
  /** How long a resolved identity is served from the caches without asking again. */
  cacheTtlSeconds: key("AURAID_CACHE_TTL_SECONDS", "auralink.auraid.cache_ttl_seconds").int(300, seconds),
  /** How long "no such AuraID" is remembered. */
  negativeTtlSeconds: key("AURAID_NEGATIVE_TTL_SECONDS", "auralink.auraid.negative_ttl_seconds").int(30, seconds),
  /** Beyond the TTL, how long an entry may still be served (marked stale) while the Communication Service is down. */
  staleMaxSeconds: key("AURAID_STALE_MAX_SECONDS", "auralink.auraid.stale_max_seconds").int(3600, countOrZero),
  /** Entries of the in-process LRU cache. */
  memoryEntries: key("AURAID_CACHE_MAX_ENTRIES", "auralink.auraid.cache_max_entries").int(10_000, count)
})
