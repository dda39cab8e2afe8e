import { Duration, Effect } from "effect"
import { AppConfig } from "../../layers/Config.ts"
import { MediaServer } from "../../layers/MediaServer.ts"
import type { SessionId, TransportId } from "../../schemas/ids.ts"
import { applyTransition } from "../sessions/transition.ts"

/** The reason a WHIP session ends with when its publisher sent no RTP for WHIP_MEDIA_TIMEOUT_MS. */
export const NO_MEDIA = "no_media"

/** RTP packets received so far by the producers on the transport (0 when the session's media is gone). */
const packetsOn = (id: SessionId, transportId: TransportId) =>
  Effect.map(
    Effect.option(MediaServer.use((media) => media.sessionStats(id))),
    (stats) =>
      stats._tag === "None" ? 0 : stats.value.producers.filter((p) => p.transportId === transportId)
        .reduce((sum, p) => sum + p.streams.reduce((n, s) => n + s.packetCount, 0), 0)
  )

/**
 * A WHIP publisher's watchdog: while its transport is open, the session ends (expired, reason
 * no_media) once no RTP has arrived on it for WHIP_MEDIA_TIMEOUT_MS (counted from the offer, so a
 * client that never sends is ended too). It stops with the transport.
 */
export const watchMedia = (id: SessionId, transportId: TransportId) =>
  Effect.gen(function*() {
    const media = yield* MediaServer
    const timeoutMs = (yield* AppConfig).whip.mediaTimeoutMs
    const step = Math.max(100, Math.floor(timeoutMs / 4))
    let seen = 0
    let since = Date.now()
    while (media.transportOpen(id, transportId)) {
      yield* Effect.sleep(Duration.millis(step))
      const packets = yield* packetsOn(id, transportId)
      if (packets !== seen) {
        seen = packets
        since = Date.now()
      } else if (Date.now() - since >= timeoutMs && media.transportOpen(id, transportId)) {
        yield* Effect.logInfo("WHIP publisher sent no RTP: session ended").pipe(
          Effect.annotateLogs({ event: "whip_media_timeout", sessionId: id, transportId, timeoutMs })
        )
        yield* applyTransition(id, "expired", { actor: "media", reason: NO_MEDIA })
        return
      }
    }
  }).pipe(
    Effect.catchTags({ IllegalTransition: () => Effect.void, SessionNotFound: () => Effect.void }),
    Effect.catchCause((cause) => Effect.logWarning("WHIP media watchdog failed", cause))
  )
