import { Context, Effect, Layer } from "effect"
import { decodeSettings, type Settings } from "../config/settings.ts"
import { loadRawConfig, type RawConfig } from "../config/source.ts"

/** The decoded, checked configuration of this process (environment over the optional HOCON file). */
export class AppConfig extends Context.Service<AppConfig, Settings>()("auralink/AppConfig") {
  /** From a given key/value record (tests, tools); the HOCON file is read only if AURALINK_CONFIG names one. */
  static readonly layerFrom = (raw: RawConfig) => Layer.effect(AppConfig, Effect.flatMap(loadRawConfig(raw), decodeSettings))

  /** From this process's environment and `./auralink.conf` (or `AURALINK_CONFIG`). */
  static readonly layer = Layer.unwrap(Effect.sync(() => AppConfig.layerFrom(process.env)))
}
