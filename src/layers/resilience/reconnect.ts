import { Duration, Effect, Schedule } from "effect"

/** Jittered exponential backoff from `baseMs`, no single wait longer than `maxMs`: the wait between failed connections. */
export const reconnectBackoff = (baseMs: number, maxMs: number): Schedule.Schedule<Duration.Duration> =>
  Schedule.min([Schedule.exponential(Duration.millis(baseMs)), Schedule.spaced(Duration.millis(maxMs))]).pipe(Schedule.jittered)

export interface KeepConnectedOptions<A, E> {
  /** Waits between connections that failed; starts over after one that worked. */
  readonly backoff: Schedule.Schedule<unknown, E>
  /** After each failed connection; `attempt` counts the failures since the last connection that worked. */
  readonly onFailure?: (error: E, attempt: number) => Effect.Effect<void>
  /** After a connection that worked has ended (unless `stop` says so), with its result and the failures before it. */
  readonly onEnded?: (ended: A, failuresBefore: number) => Effect.Effect<void>
  /** Checked when a connection has ended: true ends the loop (the client is closing). */
  readonly stop?: () => boolean
}

/**
 * The reconnect loop of the outbound streams (AI Core, ASR gateway). `connection` is one
 * connection's whole life: it fails when the connection could not be established (or proved
 * useless), and succeeds when an established one has ended. It runs again and again: after
 * `backoff` while it fails, at once after one that worked. Ends by interruption (or `stop`).
 */
export const keepConnected = <A, E, R>(connection: Effect.Effect<A, E, R>, options: KeepConnectedOptions<A, E>): Effect.Effect<void, never, R> =>
  Effect.suspend(() => {
    let failures = 0
    const established = connection.pipe(
      Effect.tapError((error) =>
        Effect.suspend(() => {
          failures++
          return options.onFailure === undefined ? Effect.void : options.onFailure(error, failures)
        })
      ),
      Effect.retry(options.backoff),
      // Only a finite `backoff` lets a failure through: that is a bug in the caller's schedule.
      Effect.orDie
    )
    return Effect.gen(function*() {
      while (true) {
        const ended = yield* established
        if (options.stop?.() === true) return
        const failuresBefore = failures
        failures = 0
        if (options.onEnded !== undefined) yield* options.onEnded(ended, failuresBefore)
      }
    })
  })
