import { Effect } from "effect"
import { auraId } from "./auraid.ts"
import { auth } from "./auth.ts"
import { ConfigSource } from "./key.ts"
import { limits, rateLimit, sessions } from "./limits.ts"
import { audio, media } from "./media.ts"
import { demo, features, grpc, http, log, service, tracing } from "./service.ts"
import type { InvalidConfig, RawConfig } from "./source.ts"
import { database, redis } from "./stores.ts"
import { participants, rooms, webrtcServer } from "./rooms.ts"
import { aic, aiCore, asr, dashboard } from "./upstreams.ts"

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
  auth,
  sessions,
  limits,
  rateLimit,
  media,
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

/** The checked configuration of this process, as its readers in this folder produce it. */
export type Settings = { readonly [Group in keyof Decoded]: Readonly<Decoded[Group]> }

/** Decodes and checks every setting; the first invalid key stops start-up. */
export const decodeSettings = (raw: RawConfig): Effect.Effect<Settings, InvalidConfig> => Effect.provideService(settings, ConfigSource, raw)
