import { Effect, Logger, Schedule } from "effect"
import { Redis as IORedis } from "ioredis"
import { randomUUID } from "node:crypto"
import { AppConfig } from "../../src/layers/Config.ts"

/** The real Redis the integration tests use (never a mock). */
export const REDIS_URL = process.env["TEST_REDIS_URL"] ?? "redis://127.0.0.1:6379"

/** A prefix unique to this test run, so parallel runs on one Redis never collide. */
export const runPrefix = (): string => `test-${randomUUID().slice(0, 8)}`

export const configLayer = (raw: Readonly<Record<string, string>> = {}) => AppConfig.layerFrom({ REDIS_URL, ...raw })

/** Deletes every key matching `pattern` (SCAN, not KEYS), over a short-lived raw connection. */
export const deleteKeys = async (pattern: string): Promise<number> => {
  const client = new IORedis(REDIS_URL)
  try {
    let cursor = "0"
    let deleted = 0
    do {
      const [next, keys] = await client.scan(cursor, "MATCH", pattern, "COUNT", 500)
      if (keys.length > 0) deleted += await client.del(...keys)
      cursor = next
    } while (cursor !== "0")
    return deleted
  } finally {
    client.disconnect()
  }
}

/** A logger layer that also records each message as text, for assertions on log lines. */
export const captureLogs = () => {
  const lines: Array<string> = []
  const text = (message: unknown) => Array.isArray(message) ? message.map(String).join(" ") : String(message)
  const layer = Logger.layer([Logger.make(({ message }) => void lines.push(text(message)))])
  return { lines, layer }
}

/** Polls `check` every 20 ms until it holds (or fails after `timeoutMs`). */
export const eventually = <E, R>(check: Effect.Effect<boolean, E, R>, timeoutMs = 5_000) =>
  check.pipe(
    Effect.filterOrFail((ok) => ok, () => new Error("condition not met yet")),
    Effect.retry({ times: Math.ceil(timeoutMs / 20), schedule: Schedule.spaced("20 millis") }),
    Effect.asVoid
  )
