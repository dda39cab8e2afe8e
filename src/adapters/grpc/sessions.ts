import { status } from "@grpc/grpc-js"
import { Effect, Schema } from "effect"
import type { Cluster } from "../../layers/Cluster.ts"
import type { ClusterMetrics } from "../../layers/cluster/metrics.ts"
import type { AppConfig } from "../../layers/Config.ts"
import type { Membership } from "../../programs/cluster/membership.ts"
import type { SessionEvents } from "../../layers/sessions/events.ts"
import type { SessionMetrics } from "../../layers/sessions/metrics.ts"
import type { Sessions } from "../../layers/SessionStore.ts"
import { getSession } from "../../programs/sessions/get.ts"
import { listSessions } from "../../programs/sessions/list.ts"
import { startSession } from "../../programs/sessions/start.ts"
import { stopSession } from "../../programs/sessions/stop.ts"
import { updateSessionConfig } from "../../programs/sessions/update-config.ts"
import { watchSession } from "../../programs/sessions/watch.ts"
import { SessionId } from "../../schemas/ids.ts"
import type { LimitReached } from "../../schemas/limits.ts"
import {
  type IllegalTransition,
  type ListQuery,
  type Session,
  type SessionClosed,
  SessionConfigPatch,
  type SessionForbidden,
  type SessionNotFound,
  SessionState
} from "../../schemas/session.ts"
import { invalid, type Statuses } from "./kit/failure.ts"
import { asRecord, decodeWith } from "./kit/request.ts"
import { serveGrpc } from "./kit/service.ts"

export const SESSION_SERVICE = "auralink.session.v1.SessionService"

type SessionError = SessionNotFound | SessionForbidden | IllegalTransition | SessionClosed | LimitReached

const statuses: Statuses<SessionError> = {
  SessionNotFound: status.NOT_FOUND,
  SessionForbidden: status.PERMISSION_DENIED,
  IllegalTransition: status.FAILED_PRECONDITION,
  SessionClosed: status.FAILED_PRECONDITION,
  LimitReached: status.RESOURCE_EXHAUSTED
}

// ---- requests: proto-loader objects -> the programs' inputs ---------------------------------

/** proto SessionConfig field -> SessionConfigPatch key (all but asr_options_json, which is JSON text). */
const configFields = {
  sampleRate: "sample_rate",
  channels: "channels",
  encoding: "encoding",
  language: "language",
  aic: "aic",
  idleTimeoutSeconds: "idle_timeout_seconds",
  room: "room",
  participantIdentity: "participant_identity"
} as const
const patchNames: Record<string, string> = { ...configFields, asr: "asr_options_json" }

/** A proto SessionConfig (unset `optional` fields are absent) -> the same SessionConfigPatch REST decodes. */
const decodeConfig = (raw: unknown, prefix: string) =>
  Effect.gen(function*() {
    const message = asRecord(raw)
    const input: Record<string, unknown> = {}
    for (const key of Object.keys(configFields)) {
      const value = message[key]
      if (value !== undefined && value !== null) input[key] = value
    }
    const asrJson = message["asrOptionsJson"]
    if (asrJson !== undefined && asrJson !== null) {
      input["asr"] = yield* Effect.try({
        try: (): unknown => {
          if (typeof asrJson !== "string") throw new TypeError("not a string")
          return JSON.parse(asrJson)
        },
        catch: () => invalid(`${prefix}.asr_options_json`, "not valid JSON")
      })
    }
    return yield* decodeWith(SessionConfigPatch, input, prefix, patchNames)
  })

const decodeSessionId = (request: unknown) => decodeWith(SessionId, asRecord(request)["sessionId"], "session_id")

const ListRequest = Schema.Struct({
  state: Schema.Union([Schema.Literal(""), SessionState]),
  limit: Schema.Number.check(Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: 100 })),
  cursor: Schema.String.check(Schema.isMaxLength(256))
})
const decodeListQuery = (request: unknown) =>
  Effect.map(decodeWith(ListRequest, request, ""), ({ cursor, limit, state }) => {
    const query: ListQuery = {
      ...(state === "" ? {} : { state }),
      ...(limit === 0 ? {} : { limit }),
      ...(cursor === "" ? {} : { cursor })
    }
    return query
  })

// ---- responses ---------------------------------------------------------------------------

/** A Session in the proto shape (camelCase for proto-loader; absent times and error as ""). */
export const toProtoSession = (session: Session) => ({
  id: session.id,
  userId: session.userId,
  deviceId: session.deviceId,
  state: session.state,
  config: {
    sampleRate: session.config.sampleRate,
    channels: session.config.channels,
    encoding: session.config.encoding,
    language: session.config.language,
    asrOptionsJson: JSON.stringify(session.config.asr),
    aic: session.config.aic,
    idleTimeoutSeconds: session.config.idleTimeoutSeconds,
    ...(session.config.room === undefined ? {} : { room: session.config.room }),
    ...(session.config.participantIdentity === undefined ? {} : { participantIdentity: session.config.participantIdentity })
  },
  context: session.context.map(({ at, role, text }) => ({ role, text, at })),
  createdAt: session.createdAt,
  startedAt: session.startedAt ?? "",
  endedAt: session.endedAt ?? "",
  expiresAt: session.expiresAt,
  lastActivityAt: session.lastActivityAt,
  error: session.error ?? ""
})

// ---- the service -------------------------------------------------------------------------

/**
 * `auralink.session.v1.SessionService` on the GrpcServer: thin adapters over the same session
 * programs as REST, on the same services (built once below both listeners, see main.ts).
 */
export const SessionGrpcLive = serveGrpc<SessionError, AppConfig | Sessions | SessionEvents | SessionMetrics | Cluster | ClusterMetrics | Membership>(
  { service: SESSION_SERVICE, proto: "session.proto", rateLimit: "session", statuses },
  ({ serverStream, unary }) => ({
    StartSession: unary(
      "StartSession",
      (request, principal) =>
        Effect.flatMap(decodeConfig(asRecord(request)["config"], "config"), (config) => startSession(principal, config)).pipe(
          Effect.map(toProtoSession)
        )
    ),
    StopSession: unary(
      "StopSession",
      (request, principal) => Effect.flatMap(decodeSessionId(request), (id) => stopSession(principal, id)).pipe(Effect.map(toProtoSession))
    ),
    GetSession: unary(
      "GetSession",
      (request, principal) => Effect.flatMap(decodeSessionId(request), (id) => getSession(principal, id)).pipe(Effect.map(toProtoSession))
    ),
    UpdateSessionConfig: unary("UpdateSessionConfig", (request, principal) =>
      Effect.gen(function*() {
        const id = yield* decodeSessionId(request)
        const patch = yield* decodeConfig(asRecord(request)["config"], "config")
        return toProtoSession(yield* updateSessionConfig(principal, id, patch))
      })),
    ListUserSessions: unary("ListUserSessions", (request, principal) =>
      Effect.gen(function*() {
        const page = yield* listSessions(principal, yield* decodeListQuery(request)).pipe(
          Effect.catchTag("InvalidCursor", (error) => Effect.fail(invalid("cursor", error.detail)))
        )
        return { sessions: page.sessions.map(toProtoSession), nextCursor: page.nextCursor ?? "" }
      })),
    WatchSession: serverStream(
      "WatchSession",
      (request, principal) => Effect.flatMap(decodeSessionId(request), (id) => watchSession(principal, id)),
      toProtoSession
    )
  })
)
