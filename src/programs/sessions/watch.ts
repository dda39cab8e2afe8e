import { Effect, Option, Stream } from "effect"
import { SessionEvents } from "../../layers/sessions/events.ts"
import { Sessions } from "../../layers/SessionStore.ts"
import type { Principal } from "../../schemas/auth.ts"
import { isTerminal, sessionNotFound } from "../../schemas/session.ts"
import { authorize } from "./access.ts"
import type { SessionId } from "../../schemas/ids.ts"

/**
 * The session now, then each change as it happens (for gRPC WatchSession); ends after a terminal
 * state. Subscribes before reading, so no change between the two is missed; repeats of the same
 * state are dropped. The subscription lives in the caller's scope.
 */
export const watchSession = Effect.fn("sessions.watch")(function*(principal: Principal, id: SessionId) {
  yield* authorize(principal, id, "read")
  const changes = yield* (yield* SessionEvents).subscribe(id)
  const current = yield* (yield* Sessions).findFresh(id)
  if (Option.isNone(current)) return yield* sessionNotFound(id)
  return Stream.make(current.value).pipe(
    Stream.concat(changes),
    Stream.changesWith((a, b) => a.state === b.state),
    Stream.takeUntil((s) => isTerminal(s.state))
  )
})
