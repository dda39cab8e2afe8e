import { Context, Effect, Layer, Schema, type Scope, Stream } from "effect"
import { isTerminal, Session } from "../../schemas/session.ts"
import { StateStore, type StateStoreError } from "../StateStore.ts"

const SessionJson = Schema.fromJsonString(Session)
const encode = Schema.encodeSync(SessionJson)
// A malformed message (another writer, another version) is skipped.
const decode = Schema.decodeUnknownResult(SessionJson)

/** The StateStore channel of one session's changes. */
export const channelOf = (id: string) => `session:${id}`

/**
 * Session changes on the StateStore's pub/sub (`session:<id>`, the session as JSON), so a watcher
 * on any instance sees transitions made on any other.
 */
export class SessionEvents extends Context.Service<SessionEvents, {
  /** Best effort: the change is already committed, so a publish failure is logged, not raised. */
  readonly publish: (session: Session) => Effect.Effect<void>
  /** Subscribed once this succeeds; the stream ends after the first terminal state. */
  readonly subscribe: (id: string) => Effect.Effect<Stream.Stream<Session>, StateStoreError, Scope.Scope>
}>()("auralink/sessions/SessionEvents") {
  static readonly layer = Layer.effect(
    SessionEvents,
    Effect.gen(function*() {
      const store = yield* StateStore
      return {
        publish: (session) =>
          store.publish(channelOf(session.id), encode(session)).pipe(
            Effect.catch((error) => Effect.logWarning("session change not published", error).pipe(Effect.annotateLogs({ sessionId: session.id }))),
            Effect.asVoid
          ),
        subscribe: (id) =>
          Effect.map(store.subscribe(channelOf(id)), (messages) =>
            messages.pipe(
              Stream.filterMap((text: string) => decode(text)),
              Stream.takeUntil((s) => isTerminal(s.state))
            ))
      }
    })
  )
}
