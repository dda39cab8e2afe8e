import { Effect } from "effect"
import { auraId } from "./auraid.ts"
import { auth } from "./auth.ts"
import { cluster } from "./cluster.ts"
import { ConfigSource } from "./key.ts"
import { limits, rateLimit, sessions } from "./limits.ts"
import { audio, media } from "./media.ts"
import { demo, features, grpc, http, log, service, tracing } from "./service.ts"
import type { InvalidConfig, LoadedConfig } from "./source.ts"
import { database, redis } from "./stores.ts"
import { participants, rooms, webrtcServer } from "./rooms.ts"
import { aic, aiCore, asr, dashboard } from "./upstreams.ts"
import { whip } from "./whip.ts"

export { isLowEntropy, type JwtAlgorithm } from "./auth.ts"
export { UNSPECIFIED_IPS } from "./media.ts"
export { type Environment, ENVIRONMENTS, SERVICE_VERSION } from "./service.ts"
export type { AicMode } from "./upstreams.ts"

/**
 * Every setting, each written once in its group's file (key, HOCON path, default, check, doc);
 * read in this order, and the first invalid key stops start-up.
 */
const settings = Effect.all({
  service,
  http,
  grpc,
  log,
  tracing,
  features,
  demo,
  database,
  redis,
  cluster,
  auth,
  sessions,
  limits,
  rateLimit,
  media,
  whip,
  audio,
  asr,
  aiCore,
  aic,
  dashboard,
  webrtcServer,
  rooms,
  participants,
  auraId
})

type Decoded = Effect.Success<typeof settings>

/** Something in the configuration start-up logs as a warning (one line each) and then goes on. */
export interface ConfigWarning {
  /** The file's key (`auralink.http.prot`) or the variable (`BRIDGE_ID`) it is about. */
  readonly key: string
  readonly message: string
}

/** The checked configuration of this process, as its readers in this folder produce it. */
export type Settings = { readonly [Group in keyof Decoded]: Readonly<Decoded[Group]> } & {
  readonly warnings: ReadonlyArray<ConfigWarning>
}

const warningsOf = (loaded: LoadedConfig, read: ReadonlySet<string>): ReadonlyArray<ConfigWarning> => [
  ...loaded.unsetSubstitutions.map(({ line, name }) => ({
    key: name,
    message: `configuration file line ${line}: \${${name}} is unset; read as \${?${name}} (the key is left out)`
  })),
  ...loaded.fileKeys.filter((path) => !read.has(path)).map((path) => ({
    key: path,
    message: `configuration file: unknown key ${path} (no setting reads it); ignored`
  }))
]

/** Decodes and checks every setting; the first invalid key stops start-up. The file's keys no setting read become warnings. */
export const decodeSettings = (loaded: LoadedConfig): Effect.Effect<Settings, InvalidConfig> =>
  Effect.gen(function*() {
    const read = new Set<string>()
    const decoded = yield* Effect.provideService(settings, ConfigSource, { values: loaded.values, read })
    return { ...decoded, warnings: warningsOf(loaded, read) }
  })
