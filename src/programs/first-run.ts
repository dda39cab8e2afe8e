import { Effect, Option, Redacted } from "effect"
import { type Settings, UNSPECIFIED_IPS } from "../config/settings.ts"

/**
 * The start-up lines a first run needs (warnings, so LOG_LEVEL=warn still shows them): the
 * development-only provisioning key made for this process, the media address announced, and in
 * staging what only works on one machine or until a restart.
 */
export const logFirstRunNotes = (config: Settings) =>
  Effect.gen(function*() {
    const { auth, http, media, service } = config
    if (media.announcedIpDefaulted) {
      yield* Effect.logWarning(
        `media: announcing 127.0.0.1 (development default): only browsers on this machine can connect; set MEDIASOUP_ANNOUNCED_IP to this host's IP to serve other machines`
      )
    } else if (Option.isNone(media.announcedIp) && UNSPECIFIED_IPS.has(media.listenIp) && service.environment === "staging") {
      yield* Effect.logWarning(`media: MEDIASOUP_ANNOUNCED_IP is unset: ICE candidates carry ${media.listenIp}, which clients cannot reach`)
    }
    if (auth.jwtSecretEphemeral && auth.algorithm === "HS256" && service.environment === "staging") {
      yield* Effect.logWarning(
        "auth: JWT_SECRET is unset: access tokens are signed with a random per-process secret (other instances and restarts refuse them)"
      )
    }
    if (auth.provisioningKeyGenerated && Option.isSome(auth.provisioningKey)) {
      yield* Effect.logWarning(
        `development provisioning key (this process only; set AUTH_PROVISIONING_KEY to choose one): ${Redacted.value(auth.provisioningKey.value)} ` +
          (config.demo.enabled ? `- paste it into the demo at http://localhost:${http.port}/demo` : "- the demo is off (DEMO_ENABLED=false)")
      ).pipe(Effect.annotateLogs({ event: "development_provisioning_key" }))
    }
  })
