import { status } from "@grpc/grpc-js"
import { Effect, Schema } from "effect"
import type { AppConfig } from "../../layers/Config.ts"
import type { ParticipantStore } from "../../layers/ParticipantStore.ts"
import { getParticipant } from "../../programs/participants/get-participant.ts"
import { qosHistory } from "../../programs/participants/qos-history.ts"
import { reportQos } from "../../programs/participants/report-qos.ts"
import { updateCapabilities } from "../../programs/participants/update-capabilities.ts"
import { updatePresence } from "../../programs/participants/update-presence.ts"
import { ParticipantIdentity } from "../../schemas/ids.ts"
import {
  MediaCapabilities,
  type ParticipantForbidden,
  type ParticipantNotFound,
  type ParticipantState,
  type Presence,
  PresenceStatus,
  type QosHistory,
  QosReport,
  type QosSample
} from "../../schemas/participants.ts"
import type { Statuses } from "./kit/failure.ts"
import { asRecord, decodeWith, protoFieldNames } from "./kit/request.ts"
import { serveGrpc } from "./kit/service.ts"

export const PARTICIPANT_SERVICE = "auralink.rooms.v1.ParticipantService"

type ParticipantError = ParticipantNotFound | ParticipantForbidden

const statuses: Statuses<ParticipantError> = {
  ParticipantNotFound: status.NOT_FOUND,
  ParticipantForbidden: status.PERMISSION_DENIED
}

// ---- requests: proto-loader objects -> the programs' inputs, with the Schemas REST decodes ----

const decodeIdentity = (request: unknown) => decodeWith(ParticipantIdentity, asRecord(request)["identity"], "identity")

const capabilityNames = protoFieldNames(MediaCapabilities.fields)
const decodeCapabilities = (request: unknown) => decodeWith(MediaCapabilities, asRecord(request)["capabilities"], "capabilities", capabilityNames)

const reportNames = protoFieldNames(QosReport.fields)
const decodeReport = (request: unknown) => decodeWith(QosReport, asRecord(request)["qos"], "qos", reportNames)

/** 0 is proto's unset: the programs' default; otherwise REST's bounds for `limit`. */
const HistoryLimit = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 10_000 }))
const decodeLimit = (request: unknown) => Effect.map(decodeWith(HistoryLimit, asRecord(request)["limit"], "limit"), (limit) => limit === 0 ? undefined : limit)

const decodeStatus = (request: unknown) => decodeWith(PresenceStatus, asRecord(request)["status"], "status")

// ---- responses: the proto shape (camelCase for proto-loader; nulls as absent fields) ---------

const toProtoSample = (sample: QosSample) => ({
  packetLossPercent: sample.packetLossPercent,
  jitterMs: sample.jitterMs,
  ...(sample.rttMs === null ? {} : { rttMs: sample.rttMs }),
  bandwidthKbps: sample.bandwidthKbps,
  mosScore: sample.mosScore,
  mosSource: sample.mosSource,
  source: sample.source,
  ...(sample.sessionId === undefined ? {} : { sessionId: sample.sessionId }),
  timestamp: sample.timestamp
})

const toProtoPresence = (presence: Presence) => ({ ...presence })

const toProtoState = (state: ParticipantState) => ({
  identity: state.identity,
  ...(state.capabilities === null ? {} : { capabilities: { ...state.capabilities } }),
  ...(state.qos === null ? {} : { qos: toProtoSample(state.qos) }),
  ...(state.presence === null ? {} : { presence: toProtoPresence(state.presence) }),
  updatedAt: state.updatedAt
})

const toProtoHistory = (history: QosHistory) => ({ identity: history.identity, samples: history.samples.map(toProtoSample) })

// ---- the service -------------------------------------------------------------------------

/**
 * `auralink.rooms.v1.ParticipantService`: the REST participant endpoints over the same programs
 * (the participant's own device or an operator; PERMISSION_DENIED otherwise).
 */
export const ParticipantGrpcLive = serveGrpc<ParticipantError, AppConfig | ParticipantStore>(
  { service: PARTICIPANT_SERVICE, proto: "rooms.proto", rateLimit: "default", statuses },
  ({ unary }) => ({
    GetParticipant: unary(
      "GetParticipant",
      (request, principal) => Effect.flatMap(decodeIdentity(request), (identity) => getParticipant(principal, identity)).pipe(Effect.map(toProtoState))
    ),
    UpdateCapabilities: unary("UpdateCapabilities", (request, principal) =>
      Effect.gen(function*() {
        const identity = yield* decodeIdentity(request)
        const capabilities = yield* decodeCapabilities(request)
        return toProtoState(yield* updateCapabilities(principal, identity, capabilities))
      })),
    ReportQos: unary("ReportQos", (request, principal) =>
      Effect.gen(function*() {
        const identity = yield* decodeIdentity(request)
        const report = yield* decodeReport(request)
        return toProtoSample(yield* reportQos(principal, identity, report))
      })),
    GetQosHistory: unary("GetQosHistory", (request, principal) =>
      Effect.gen(function*() {
        const identity = yield* decodeIdentity(request)
        const limit = yield* decodeLimit(request)
        return toProtoHistory(yield* qosHistory(principal, identity, limit))
      })),
    UpdatePresence: unary("UpdatePresence", (request, principal) =>
      Effect.gen(function*() {
        const identity = yield* decodeIdentity(request)
        const presence = yield* decodeStatus(request)
        return toProtoPresence(yield* updatePresence(principal, identity, presence))
      }))
  })
)
