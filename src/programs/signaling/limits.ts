import { Effect } from "effect"
import { AppConfig } from "../../layers/Config.ts"
import { MediaServer } from "../../layers/MediaServer.ts"
import { limitReached } from "../../schemas/limits.ts"

/**
 * Runs `make` (which creates one client transport of session `id`) only while the session holds
 * fewer than MAX_TRANSPORTS_PER_SESSION (those being made count too, so parallel requests cannot
 * overshoot); otherwise LimitReached (429) and nothing is made.
 */
export const withinTransportCap = <A, E, R>(id: string, make: Effect.Effect<A, E, R>) =>
  Effect.scoped(Effect.gen(function*() {
    const { maxTransportsPerSession: max } = (yield* AppConfig).limits
    if (!(yield* (yield* MediaServer).reserve(id, "transports", max))) {
      return yield* limitReached("MAX_TRANSPORTS_PER_SESSION", max, "transports per session")
    }
    return yield* make
  }))

/** As `withinTransportCap`, for one producer or data producer (MAX_PRODUCERS_PER_SESSION). */
export const withinProducerCap = <A, E, R>(id: string, make: Effect.Effect<A, E, R>) =>
  Effect.scoped(Effect.gen(function*() {
    const { maxProducersPerSession: max } = (yield* AppConfig).limits
    if (!(yield* (yield* MediaServer).reserve(id, "producers", max))) {
      return yield* limitReached("MAX_PRODUCERS_PER_SESSION", max, "producers per session")
    }
    return yield* make
  }))
