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

/** A `${NAME}` in the file whose variable is unset: read as `${?NAME}` (the field is left out). */
export interface UnsetSubstitution {
  readonly name: string
  readonly line: number
}

/** What settings are decoded from, and what start-up warns about. */
export interface LoadedConfig {
  /** The environment over the file's values by dotted path (`auralink.http.port`). */
  readonly values: RawConfig
  /** The dotted paths the file sets: one no setting reads is warned about. */
  readonly fileKeys: ReadonlyArray<string>
  readonly unsetSubstitutions: ReadonlyArray<UnsetSubstitution>
}

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
    // A list of plain values is read as the comma-separated text list settings take (`stun_urls = ["a", "b"]`).
    else if (Array.isArray(node)) flat[path] = node.map((item) => asText(item) ?? JSON.stringify(item)).join(",")
    else if (typeof node === "object" && node !== null) {
      for (const [name, child] of Object.entries(node)) walk(child, `${path}.${name}`)
    }
  }
  if (typeof document === "object" && document !== null) walk(Reflect.get(document, "auralink"), "auralink")
  return flat
}

// The parser's words for a required substitution it could not resolve, with where its `${` stands.
const UNRESOLVED = /^Unable to resolve '([^']+)'\. Token: \{ value: "\$\{", line: (\d+), col: (\d+) \}/

const firstLine = (error: unknown) => (error instanceof Error ? error.message.split("\n")[0] : String(error))

/** Makes the `${` at line/column (1-based) optional (`${?`); undefined when no `${` stands there. */
const makeOptional = (text: string, line: number, col: number): string | undefined => {
  const lines = text.split("\n")
  const at = lines[line - 1]
  if (at?.slice(col - 1, col + 1) !== "${") return undefined
  lines[line - 1] = `${at.slice(0, col + 1)}?${at.slice(col + 1)}`
  return lines.join("\n")
}

/**
 * Parses the file, substituting variables from `env` (not the process's own environment, so a
 * given record is the whole environment). A `${NAME}` whose variable is unset is read as
 * `${?NAME}`: the seed's file writes `bridge_id = ${BRIDGE_ID}` and loads as written.
 */
const parseFile = (path: string, env: RawConfig) =>
  Effect.tryPromise({
    try: async () => {
      let text = readFileSync(path, "utf8")
      const unset: Array<UnsetSubstitution> = []
      // Each round makes one unresolved substitution optional; there are at most as many as `${` in the file.
      for (let round = text.split("${").length;; round--) {
        try {
          return { document: await hocon.parse({ text, scope: env, env: false }), unset }
        } catch (error) {
          const match = UNRESOLVED.exec(error instanceof Error ? error.message : "")
          const [, name = "", line = "0", col = "0"] = match ?? []
          const optional = match === null || round === 0 ? undefined : makeOptional(text, Number(line), Number(col))
          if (optional === undefined) throw error
          unset.push({ name, line: Number(line) })
          text = optional
        }
      }
    },
    catch: (error) => new InvalidConfig({ key: "AURALINK_CONFIG", value: path, expected: `a readable HOCON file (${firstLine(error)})` })
  })

/**
 * The raw key/value view of the configuration: the environment, and the HOCON file (path from
 * `AURALINK_CONFIG`, else `./auralink.conf` when present) by dotted path; a setting reads its
 * variable, else its path, so the environment wins.
 */
export const loadRawConfig = (env: RawConfig): Effect.Effect<LoadedConfig, InvalidConfig> =>
  Effect.gen(function*() {
    const explicit = env["AURALINK_CONFIG"]
    const path = explicit ?? "auralink.conf"
    if (explicit === undefined && !existsSync(path)) return { values: env, fileKeys: [], unsetSubstitutions: [] }
    const { document, unset } = yield* parseFile(path, env)
    const fromFile = flattenHocon(document)
    const fromEnv = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""))
    return { values: { ...fromFile, ...fromEnv }, fileKeys: Object.keys(fromFile), unsetSubstitutions: unset }
  })
