import { Effect } from "effect"
import { AppConfig } from "../layers/Config.ts"
import { Health } from "../layers/Health.ts"
import { NotReady } from "../schemas/health.ts"

/** A state word (`ready`, `configured`, `closed`); anything with digits, dots, slashes or colons (ids, paths, addresses) is not. */
const STATE_WORD = /^[A-Za-z_]{1,32}$/

/** The public view of a section: its numbers, booleans and state words (nested objects alike), and lists as their length. */
const summarize = (section: unknown, depth = 0): Record<string, unknown> => {
  if (typeof section !== "object" || section === null || depth > 4) return {}
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(section)) {
    if (typeof value === "number" || typeof value === "boolean") out[key] = value
    else if (typeof value === "string" && STATE_WORD.test(value)) out[key] = value
    else if (Array.isArray(value)) out[key] = value.length
    else if (typeof value === "object" && value !== null) out[key] = summarize(value, depth + 1)
  }
  return out
}

/** `/status` keys of its own, which no section takes. */
const RESERVED = new Set(["view", "service", "features", "process"])

/** Liveness: the process answers. */
export const liveness = Effect.sync(() => ({ status: "healthy" as const, timestamp: Date.now() }))

/** Readiness: ready with its dependencies, or NotReady (503) while a dependency is down or shutdown began. */
export const readiness = Effect.gen(function*() {
  const { dependencies, ready, shuttingDown } = yield* (yield* Health).readiness
  if (!ready) return yield* new NotReady({ status: "not_ready", shuttingDown, dependencies })
  return { status: "ready" as const, shuttingDown, dependencies }
})

/** The service's identity and its sections (top level, beside `service`): summarized for anyone, in full (with the process) for an operator. */
export const statusReport = (operator: boolean, startedAt: Date) =>
  Effect.gen(function*() {
    const config = yield* AppConfig
    const sections = yield* (yield* Health).sections
    const identity = {
      service: {
        name: config.service.name,
        version: config.service.version,
        environment: config.service.environment,
        region: config.service.region,
        bridgeId: config.service.bridgeId,
        uptimeSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
        startedAt: startedAt.toISOString()
      },
      features: config.features
    }
    // A section never replaces `view`, `service`, `features` or `process`.
    const named = Object.entries(sections).filter(([name]) => !RESERVED.has(name))
    if (!operator) {
      return { view: "summary" as const, ...identity, ...Object.fromEntries(named.map(([name, section]) => [name, summarize(section)])) }
    }
    const memory = process.memoryUsage()
    return {
      view: "full" as const,
      ...identity,
      process: { pid: process.pid, node: process.version, rssBytes: memory.rss, heapUsedBytes: memory.heapUsed },
      ...Object.fromEntries(named)
    }
  })
