import { Duration, Effect } from "effect"
import type { types } from "mediasoup"
import { serviceUnavailable, type ServiceUnavailable } from "../../schemas/unavailable.ts"

/** Retry-After of a request refused because its media worker is stalled: about one probe period. */
const STALLED_RETRY_AFTER_SECONDS = 2

export interface StalledWorker {
  readonly index: number
  readonly reason: string
}

/**
 * Which mediasoup workers answer. A worker is stalled when a probe (getResourceUsage) or any
 * request to it gets no answer within `timeoutMs` (a SIGSTOPped or wedged worker never dies, so
 * mediasoup would wait 15 s per request); it is healthy again on the next probe it answers.
 * Requests to a stalled worker fail at once with 503 instead of waiting.
 */
export const makeWorkerHealth = (options: { readonly timeoutMs: number; readonly onChange: (index: number, stalled: StalledWorker | undefined) => void }) => {
  const stalled = new Map<number, StalledWorker>()
  /** A probe still unanswered: the next one waits for it instead of piling up requests. */
  const probing = new Map<number, Promise<unknown>>()
  const timeout = Duration.millis(options.timeoutMs)

  const markStalled = (index: number, reason: string) => {
    if (stalled.has(index)) return
    const entry = { index, reason }
    stalled.set(index, entry)
    options.onChange(index, entry)
  }
  const markHealthy = (index: number) => {
    if (!stalled.delete(index)) return
    options.onChange(index, undefined)
  }
  const refused = (index: number) => serviceUnavailable(`Media worker ${index} is not answering; retry shortly`, STALLED_RETRY_AFTER_SECONDS)

  /**
   * Runs one request on worker `index`: at once 503 when it is stalled, 503 (and the worker
   * marked stalled) when it does not answer within the timeout; a late answer is `discard`ed
   * (e.g. a router made after its caller gave up is closed).
   */
  const call = <A, E>(
    index: number,
    run: () => Promise<A>,
    onReject: (error: unknown) => E,
    discard?: (late: A) => void
  ): Effect.Effect<A, E | ServiceUnavailable> =>
    Effect.suspend(() => {
      if (stalled.has(index)) return Effect.fail(refused(index))
      const promise = run()
      return Effect.tryPromise({ try: () => promise, catch: onReject }).pipe(
        Effect.timeoutOrElse({
          duration: timeout,
          orElse: () =>
            Effect.suspend(() => {
              markStalled(index, `a request got no answer within ${options.timeoutMs} ms`)
              if (discard !== undefined) promise.then(discard, () => undefined)
              return Effect.fail(refused(index))
            })
        })
      )
    })

  /** One probe of the worker in slot `index`. */
  const probe = (index: number, worker: types.Worker): Effect.Effect<void> =>
    Effect.suspend(() => {
      const pending = probing.get(index) ?? worker.getResourceUsage()
      probing.set(index, pending)
      return Effect.tryPromise(() => pending).pipe(
        Effect.timeoutOrElse({ duration: timeout, orElse: () => Effect.fail("timeout") }),
        Effect.matchEffect({
          onSuccess: () =>
            Effect.sync(() => {
              probing.delete(index)
              markHealthy(index)
            }),
          onFailure: (error) =>
            Effect.sync(() => {
              if (error !== "timeout") probing.delete(index) // a closed worker is onDied's business
              else markStalled(index, `no answer to a probe within ${options.timeoutMs} ms`)
            })
        })
      )
    })

  return {
    call,
    probe,
    isStalled: (index: number) => stalled.has(index),
    /** A replaced worker starts healthy. */
    reset: (index: number) => {
      probing.delete(index)
      markHealthy(index)
    },
    stalled: (): ReadonlyArray<StalledWorker> => [...stalled.values()]
  }
}
