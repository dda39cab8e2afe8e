import { Effect } from "effect"
import { AppConfig } from "../../layers/Config.ts"
import { SessionEvents } from "../../layers/sessions/events.ts"
import { Sessions } from "../../layers/SessionStore.ts"
import type { Principal } from "../../schemas/auth.ts"
import type { SessionConfig, SessionConfigPatch } from "../../schemas/session.ts"
import { admitNewSession, refuseNewSession } from "../cluster/admission.ts"
import { actorOf } from "./access.ts"

/** The config of a new session: the given fields over the defaults (AIC and idle timeout from config). */
export const defaultConfig = Effect.gen(function*() {
  const { features, sessions } = yield* AppConfig
  const config: SessionConfig = {
    sampleRate: 16000,
    channels: 1,
    encoding: "s16le",
    language: "en-US",
    asr: {},
    aic: features.aic,
    idleTimeoutSeconds: sessions.idleTimeoutSeconds
  }
  return config
})

/** Opens a pending session for the principal's user and device, owned by this instance if it has room (else 503). */
export const startSession = Effect.fn("sessions.start")(function*(principal: Principal, input: SessionConfigPatch) {
  const config = { ...(yield* defaultConfig), ...input }
  const { limits } = yield* AppConfig
  const owner = yield* admitNewSession
  const session = yield* (yield* Sessions).create({
    userId: principal.userId,
    deviceId: principal.deviceId,
    config,
    caps: {
      pendingPerUser: limits.maxPendingSessionsPerUser,
      pendingPerDevice: limits.maxPendingSessionsPerDevice,
      openPerUser: limits.maxOpenSessionsPerUser,
      openPerDevice: limits.maxOpenSessionsPerDevice
    },
    owner,
    actor: actorOf(principal),
    reason: "start"
  }).pipe(Effect.catchTag("InstanceFull", () => refuseNewSession("capacity")))
  yield* (yield* SessionEvents).publish(session)
  yield* Effect.logInfo("session started").pipe(Effect.annotateLogs({ event: "session_started", sessionId: session.id }))
  return session
})
