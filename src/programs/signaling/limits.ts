import { Effect } from "effect"
import type { Settings } from "../../config/settings.ts"
import { AppConfig } from "../../layers/Config.ts"
import { MediaServer } from "../../layers/MediaServer.ts"
import { limitReached } from "../../schemas/limits.ts"
import type { SessionId } from "../../schemas/ids.ts"

/** Each per-session cap: its setting's name, how its refusal reads, and its value. */
const caps = {
  transports: { setting: "MAX_TRANSPORTS_PER_SESSION", what: "transports per session", max: (l: Settings["limits"]) => l.maxTransportsPerSession },
  producers: { setting: "MAX_PRODUCERS_PER_SESSION", what: "producers per session", max: (l: Settings["limits"]) => l.maxProducersPerSession }
} as const

/**
 * Runs `make` (which creates one client transport, or one producer or data producer, of session
 * `id`) only while the session holds fewer than the cap (those being made count too, so parallel
 * requests cannot overshoot); otherwise LimitReached (429) and nothing is made.
 */
const withinCap = (kind: keyof typeof caps) => <A, E, R>(id: SessionId, make: Effect.Effect<A, E, R>) =>
  Effect.scoped(Effect.gen(function*() {
    const cap = caps[kind]
    const max = cap.max((yield* AppConfig).limits)
    if (!(yield* (yield* MediaServer).reserve(id, kind, max))) return yield* limitReached(cap.setting, max, cap.what)
    return yield* make
  }))

/** MAX_TRANSPORTS_PER_SESSION around the creation of a WebRTC or plain transport. */
export const withinTransportCap = withinCap("transports")
/** MAX_PRODUCERS_PER_SESSION around the creation of a producer or data producer. */
export const withinProducerCap = withinCap("producers")
