import { Context, Effect, Layer } from "effect"
import type { Scope } from "effect"
import { AppConfig } from "../../layers/Config.ts"
import { limitReached, type LimitReached } from "../../schemas/limits.ts"
import type { SessionId } from "../../schemas/ids.ts"

/** Open server-sent event streams of this instance, by session and by user, under their caps. */
export class EventStreams extends Context.Service<EventStreams, {
  /** Holds a place for one stream until the scope closes; LimitReached when the session or the user has its cap. */
  readonly hold: (sessionId: SessionId, userId: string) => Effect.Effect<void, LimitReached, Scope.Scope>
  readonly open: Effect.Effect<number>
}>()("auralink/audio/EventStreams") {
  static readonly layer = Layer.effect(
    EventStreams,
    Effect.gen(function*() {
      const { maxSseStreamsPerSession, maxSseStreamsPerUser } = (yield* AppConfig).limits
      const bySession = new Map<string, number>()
      const byUser = new Map<string, number>()
      const add = (map: Map<string, number>, key: string, n: number) => {
        const next = (map.get(key) ?? 0) + n
        if (next <= 0) map.delete(key)
        else map.set(key, next)
      }
      return EventStreams.of({
        hold: (sessionId, userId) =>
          Effect.gen(function*() {
            if ((bySession.get(sessionId) ?? 0) >= maxSseStreamsPerSession) {
              return yield* limitReached("MAX_SSE_STREAMS_PER_SESSION", maxSseStreamsPerSession, "event streams per session")
            }
            if ((byUser.get(userId) ?? 0) >= maxSseStreamsPerUser) {
              return yield* limitReached("MAX_SSE_STREAMS_PER_USER", maxSseStreamsPerUser, "event streams per user")
            }
            add(bySession, sessionId, 1)
            add(byUser, userId, 1)
            yield* Effect.addFinalizer(() =>
              Effect.sync(() => {
                add(bySession, sessionId, -1)
                add(byUser, userId, -1)
              })
            )
          }),
        open: Effect.sync(() => [...bySession.values()].reduce((a, b) => a + b, 0))
      })
    })
  )
}
