import hocon from "@pushcorn/hocon-parser"
import { Effect, Schema } from "effect"
import { existsSync, readFileSync } from "node:fs"
import { keys } from "./keys.ts"

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

const lookup = (root: unknown, path: string): unknown =>
  path.split(".").reduce<unknown>(
    (node, part) => (typeof node === "object" && node !== null ? Reflect.get(node, part) : undefined),
    root
  )

const asText = (value: unknown): string | undefined => {
  if (typeof value === "string") return value
  if (typeof value === "number" || typeof value === "boolean") return String(value)
  return undefined
}

/** The seed's file writes JDBC URLs; the Postgres driver wants the bare `postgresql://` form. */
const normalise = (env: string, value: string): string =>
  env === "DATABASE_URL" && value.startsWith("jdbc:") ? value.slice("jdbc:".length) : value

/** Flattens a parsed `auralink { ... }` document onto the environment variable names. */
export const flattenHocon = (document: unknown): Record<string, string> => {
  const flat: Record<string, string> = {}
  for (const key of keys) {
    const value = asText(lookup(document, key.hocon))
    if (value !== undefined) flat[key.env] = normalise(key.env, value)
  }
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
 * The raw key/value view of the configuration: the HOCON file (path from `AURALINK_CONFIG`,
 * else `./auralink.conf` when present) overlaid by the environment, which wins.
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
