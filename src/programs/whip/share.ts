import { Effect, Option, Schema } from "effect"
import { createHash, randomBytes } from "node:crypto"
import { AppConfig } from "../../layers/Config.ts"
import { StateStore } from "../../layers/StateStore.ts"
import type { Principal } from "../../schemas/auth.ts"
import type { SessionId } from "../../schemas/ids.ts"
import { sessionClosed, openStates } from "../../schemas/session.ts"
import type { ShareGrant, ShareRequest } from "../../schemas/whip.ts"
import { serviceUnavailable } from "../../schemas/unavailable.ts"
import { authorize } from "../sessions/access.ts"

/** What the store keeps for a share token, under the hash of the token (the token itself is never stored). */
const Grant = Schema.fromJsonString(Schema.Struct({ sessionId: Schema.String, owner: Schema.String }))
const decodeGrant = Schema.decodeUnknownOption(Grant)
const encodeGrant = Schema.encodeSync(Grant)

/** Share tokens are opaque (32 random bytes, base64url): they open one session's WHEP playback until they expire. */
const tokenId = (token: string) => createHash("sha256").update(token, "utf8").digest("base64url")
const store = StateStore.use((s) => Effect.succeed(s.namespace("whep:share")))

/**
 * The owner of an open session mints a short-lived share token: a WHEP URL and the bearer that
 * opens it for anyone holding it (WHEP_SHARE_TOKEN_TTL_SECONDS at most). Kept in the state store,
 * so any instance honours it.
 */
export const mintShareToken = Effect.fn("whep.share")(function*(principal: Principal, id: SessionId, request: ShareRequest) {
  const session = yield* authorize(principal, id, "write")
  if (!openStates.includes(session.state)) return yield* sessionClosed(session.state)
  const { whip, dashboard } = yield* AppConfig
  const ttlSeconds = Math.min(request.ttlSeconds ?? whip.shareTokenTtlSeconds, whip.shareTokenTtlSeconds)
  const token = randomBytes(32).toString("base64url")
  yield* (yield* store).set(tokenId(token), encodeGrant({ sessionId: id, owner: principal.userId }), { ttlMs: ttlSeconds * 1000 }).pipe(
    Effect.mapError(() => serviceUnavailable("Share tokens cannot be stored right now (state store); retry shortly"))
  )
  const base = Option.match(dashboard.publicUrl, { onNone: () => "", onSome: (url) => url.replace(/\/+$/, "") })
  const grant: ShareGrant = { token, whepUrl: `${base}/whep/sessions/${id}`, expiresAt: new Date(Date.now() + ttlSeconds * 1000).toISOString() }
  yield* Effect.logInfo("WHEP share token minted").pipe(Effect.annotateLogs({ event: "whep_share_minted", sessionId: id, ttlSeconds }))
  return grant
})

/** The holder id of a share token valid for session `id`, if it is one. */
export const shareHolder = Effect.fn("whep.shareHolder")(function*(token: string, id: SessionId) {
  if (token.length === 0) return Option.none<string>()
  const key = tokenId(token)
  const stored = yield* (yield* store).get(key)
  const grant = Option.flatMap(stored, decodeGrant)
  return Option.isSome(grant) && grant.value.sessionId === id ? Option.some(`share:${key.slice(0, 16)}`) : Option.none<string>()
})
