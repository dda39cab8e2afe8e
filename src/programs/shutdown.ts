import { Effect } from "effect"

export type ShutdownSignal = "SIGTERM" | "SIGINT"

/** Completes with the first SIGTERM/SIGINT; the handlers are removed when it completes or is interrupted. */
export const awaitShutdownSignal: Effect.Effect<ShutdownSignal> = Effect.callback<ShutdownSignal>((resume) => {
  const on = (signal: ShutdownSignal) => () => resume(Effect.succeed(signal))
  const onTerm = on("SIGTERM")
  const onInt = on("SIGINT")
  process.once("SIGTERM", onTerm)
  process.once("SIGINT", onInt)
  return Effect.sync(() => {
    process.off("SIGTERM", onTerm)
    process.off("SIGINT", onInt)
  })
})

/**
 * The hard deadline: if graceful shutdown has not finished after `ms`, the process exits 1
 * whatever is still running. The timer is unref'd, so it never keeps a finished process alive.
 */
export const armShutdownDeadline = (ms: number) =>
  Effect.sync(() => {
    setTimeout(() => {
      process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: "fatal", msg: `shutdown deadline of ${ms} ms passed; exiting` })}\n`)
      process.exit(1)
    }, ms).unref()
  })
