import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { Authentication } from "./auth.ts"
import { ParticipantIdentity } from "./ids.ts"
import {
  MediaCapabilities,
  ParticipantForbidden,
  ParticipantNotFound,
  ParticipantState,
  Presence,
  PresenceUpdate,
  QosHistory,
  QosHistoryQuery,
  QosReport,
  QosSample
} from "./participants.ts"
import { UserRateLimit } from "./rate-limit.ts"
import { ServiceUnavailableResponse } from "./unavailable.ts"

const byIdentity = { identity: ParticipantIdentity }
// 503: the state store is unreachable (retry shortly).
const write = [ParticipantForbidden, ServiceUnavailableResponse] as const
const read = [ParticipantNotFound, ...write] as const

/** A participant's capabilities, QoS and presence: its own device (identity = user id) or an operator. */
export class ParticipantsApi extends HttpApiGroup.make("participants")
  .add(
    HttpApiEndpoint.get("get", "/:identity", { params: byIdentity, success: ParticipantState, error: read }),
    HttpApiEndpoint.put("updateCapabilities", "/:identity/capabilities", {
      params: byIdentity,
      payload: MediaCapabilities,
      success: ParticipantState,
      error: read
    }),
    HttpApiEndpoint.post("reportQos", "/:identity/qos", {
      params: byIdentity,
      payload: QosReport,
      success: QosSample.pipe(HttpApiSchema.status(201)),
      error: write
    }),
    HttpApiEndpoint.get("qosHistory", "/:identity/qos", { params: byIdentity, query: QosHistoryQuery, success: QosHistory, error: read }),
    HttpApiEndpoint.put("updatePresence", "/:identity/presence", { params: byIdentity, payload: PresenceUpdate, success: Presence, error: read })
  )
  .prefix("/api/participants")
  .middleware(UserRateLimit)
  .middleware(Authentication)
  .annotateMerge(OpenApi.annotations({ title: "Participants", description: "Media capabilities, QoS reports and history, presence of room participants" }))
{}
