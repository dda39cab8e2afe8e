/** A whole-number option of a development CLI (`--name`), or exit 2 naming it. */
export const wholeOption = (name: string, text: string, max: number, min = 0): number => {
  const n = Number(text)
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`--${name}: expected a whole number ${min}-${max}, got ${JSON.stringify(text)}\n`)
    process.exit(2)
  }
  return n
}

/**
 * Prints `counters()` every 10 s until SIGINT/SIGTERM (or a parent reading stdout went away),
 * then `stop()`s the fake and exits 0.
 */
export const runUntilSignal = (counters: () => string, stop: () => Promise<void>): void => {
  const report = setInterval(() => process.stdout.write(counters()), 10_000)
  const end = () => {
    clearInterval(report)
    void stop().finally(() => process.exit(0))
  }
  process.stdout.on("error", end)
  process.once("SIGINT", end)
  process.once("SIGTERM", end)
}
