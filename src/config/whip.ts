import { Effect } from "effect"
import { between, key, ms } from "./key.ts"

/** WHIP ingest and WHEP playback (RFC 9725 and draft-ietf-wish-whep). */
export const whip = Effect.all({
  /** A WHIP session that has received no RTP for this long ends (reason `no_media`). */
  mediaTimeoutMs: key("WHIP_MEDIA_TIMEOUT_MS", "auralink.whip.media_timeout_ms").int(30_000, ms),
  /** WHEP players one session may have at once; the next gets 429. */
  maxViewers: key("WHEP_MAX_VIEWERS", "auralink.whip.max_viewers").int(10, between("a whole number", 0, 1000)),
  /** The longest (and default) life of a share token minted by `POST /api/session/:id/share`. */
  shareTokenTtlSeconds: key("WHEP_SHARE_TOKEN_TTL_SECONDS", "auralink.whip.share_token_ttl_seconds").int(600, between("seconds", 10, 86_400))
})
