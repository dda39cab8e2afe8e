import { spawnSync } from "node:child_process"

/** Runs `promtool check metrics` (Debian package `prometheus`) on an exposition text. */
export const checkMetricsWithPromtool = (text: string): { status: number; output: string } => {
  const result = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" })
  if (result.error !== undefined) return { status: -1, output: `promtool not runnable: ${result.error.message}` }
  return { status: result.status ?? -1, output: `${result.stdout}${result.stderr}` }
}
