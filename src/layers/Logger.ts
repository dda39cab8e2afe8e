import { Cause, Effect, Layer, Logger as EffectLogger, References } from "effect"
import { AppConfig } from "./Config.ts"

export interface LogIdentity {
  readonly service: string
  readonly env: string
  readonly version: string
}

const plain = (value: unknown): unknown => {
  if (value instanceof Error) return value.message
  if (typeof value === "bigint") return value.toString()
  return value
}

/**
 * One JSON object per line: time, level, msg, the service identity, requestId/traceId/spanId
 * when inside a request or span, then every log annotation (sessionId, ...). Causes are
 * rendered as their first line (no stack frames) unless the level is Debug or lower.
 */
export const jsonLogger = (identity: LogIdentity, write: (line: string) => void = (l) => process.stdout.write(l + "\n")) =>
  EffectLogger.make<unknown, void>(({ cause, date, fiber, logLevel, message }) => {
    const parts: ReadonlyArray<unknown> = Array.isArray(message) ? message : [message]
    const [first, ...rest] = parts
    const record: Record<string, unknown> = {
      time: date.toISOString(),
      level: logLevel.toLowerCase(),
      msg: typeof first === "string" ? first : JSON.stringify(plain(first)),
      ...identity
    }
    const span = fiber.cache.span
    if (span !== undefined) {
      record["traceId"] = span.traceId
      record["spanId"] = span.spanId
    }
    for (const [key, value] of Object.entries(fiber.getRef(References.CurrentLogAnnotations))) {
      record[key] = plain(value)
    }
    if (rest.length > 0) record["details"] = rest.map(plain)
    if (cause.reasons.length > 0) {
      const rendered = Cause.pretty(cause)
      record["error"] = logLevel === "Debug" || logLevel === "Trace" ? rendered : rendered.split("\n")[0]
    }
    write(JSON.stringify(record, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)))
  })

/** Replaces the default logger with the JSON one and applies LOG_LEVEL. */
export const LoggerLive = Layer.unwrap(
  Effect.gen(function*() {
    const config = yield* AppConfig
    const identity = { service: config.service.name, env: config.service.environment, version: config.service.version }
    return Layer.mergeAll(
      EffectLogger.layer([jsonLogger(identity)]),
      Layer.succeed(References.MinimumLogLevel, config.log.level)
    )
  })
)
