import { Deferred, Effect, Queue, type Scope } from "effect"
import { Sessions } from "../../layers/SessionStore.ts"
import type { SessionId } from "../../schemas/ids.ts"
import type { AppendContext } from "../../schemas/session.ts"

interface Pending {
  readonly id: SessionId
  readonly entry: AppendContext
  readonly written: Deferred.Deferred<void>
}

/**
 * How long final transcripts gather after a write before the next one. One UPDATE per transcript,
 * at one final per second per stream, was a tenth of the main thread at 150 sessions
 * (bench/audio-ingest): the statement's round trip, not the work in Postgres; batches formed
 * only while a write was in flight held 1.4 transcripts on average at 80 sessions.
 */
const GATHER_MS = 50

/**
 * Wall-clock wait for the gather window: a plain timer, not `Effect.sleep`, so the window does not
 * follow a test clock (the writer serves every session of the process, not one test's fiber).
 */
const gather = Effect.callback<void>((resume) => {
  const timer = setTimeout(() => resume(Effect.void), GATHER_MS)
  return Effect.sync(() => clearTimeout(timer))
})

/**
 * Appends final transcripts to their sessions' contexts, all sessions in one statement: the first
 * at once, then what came meanwhile, at most one write per GATHER_MS. `append` completes once its
 * entry is written (or its write failed, which is logged: audio and transcripts go on), so a
 * transcript is in the context before clients are told of it. What is queued when the scope
 * closes is written first.
 */
export const makeTranscriptContext = (
  cap: number
): Effect.Effect<{ readonly append: (id: SessionId, text: string) => Effect.Effect<void> }, never, Sessions | Scope.Scope> =>
  Effect.gen(function*() {
    const sessions = yield* Sessions
    const queue = yield* Queue.unbounded<Pending>()
    const write = (batch: ReadonlyArray<Pending>) =>
      sessions.appendContextMany(batch, cap).pipe(
        Effect.catch((error) => Effect.logWarning(`${batch.length} transcript(s) not added to the session context`, error)),
        Effect.ensuring(Effect.sync(() => batch.forEach((p) => Deferred.doneUnsafe(p.written, Effect.void))))
      )
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.flatMap(Queue.takeAll(queue), write), gather)))
    yield* Effect.addFinalizer(() => Effect.flatMap(Queue.clear(queue), write).pipe(Effect.ignore))
    return {
      append: (id, text) =>
        Effect.suspend(() => {
          const written = Deferred.makeUnsafe<void>()
          Queue.offerUnsafe(queue, { id, entry: { role: "user", text }, written })
          return Deferred.await(written)
        })
    }
  })
