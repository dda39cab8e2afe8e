import hocon from "@pushcorn/hocon-parser"
import { Effect, Schema } from "effect"
import { existsSync, readFileSync } from "node:fs"

/** Start-up stops on this: one line naming the key, the bad value and what was expected. */
export class InvalidConfig extends Schema.TaggedError<InvalidConfig>()("InvalidConfig", {
  key: Schema.String,
  value: Schema.String,
  expected: Schema.String
}) {
  override get message(): string {
    return `invalid configuration: ${this.key}=${this.value}: expected ${this.expected}`
  }
}

export type RawConfig = Readonly<Record<string, string | undefined>>

const asText = (value: unknown): string | undefined => {
  if (typeof value === "string") return value
  if (typeof value === "number" || typeof value === "boolean") return String(value)
  return undefined
}

/** Flattens a parsed `auralink { ... }` document to its dotted paths (`auralink.http.port`), which settings read. */
export const flattenHocon = (document: unknown): Record<string, string> => {
  const flat: Record<string, string> = {}
  const walk = (node: unknown, path: string): void => {
    const text = asText(node)
    if (text !== undefined) flat[path] = text
    else if (typeof node === "object" && node !== null && !Array.isArray(node)) {
      for (const [name, child] of Object.entries(node)) walk(child, `${path}.${name}`)
    }
  }
  if (typeof document === "object" && document !== null) walk(Reflect.get(document, "auralink"), "auralink")
  return flat
}

const parseFile = (path: string) =>
  Effect.tryPromise({
    try: () => hocon.parse({ text: readFileSync(path, "utf8") }),
    catch: (error) =>
      new InvalidConfig({
        key: "AURALINK_CONFIG",
        value: path,
        expected: `a readable HOCON file (${error instanceof Error ? error.message.split("\n")[0] : String(error)})`
      })
  })

/**
 * The raw key/value view of the configuration: the environment, and the HOCON file (path from
 * `AURALINK_CONFIG`, else `./auralink.conf` when present) by dotted path; a setting reads its
 * variable, else its path, so the environment wins.
 */
export const loadRawConfig = (env: RawConfig): Effect.Effect<RawConfig, InvalidConfig> =>
  Effect.gen(function*() {
    const explicit = env["AURALINK_CONFIG"]
    const path = explicit ?? "auralink.conf"
    if (explicit === undefined && !existsSync(path)) return env
    const document = yield* parseFile(path)
    const fromEnv = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""))
    return { ...flattenHocon(document), ...fromEnv }
  })
