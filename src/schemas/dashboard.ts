import { Schema } from "effect"

// The Dashboard's bridge registry, as this service speaks it (README "Dashboard registration").
// Every call carries `Authorization: Bearer <DASHBOARD_API_KEY>`; bodies are JSON.

/** `POST /api/v1/bridges`: who this bridge is and what it can take. */
export const BridgeRegistration = Schema.Struct({
  bridgeId: Schema.String,
  region: Schema.String,
  version: Schema.String,
  environment: Schema.String,
  /** Where clients reach this bridge (`PUBLIC_URL`), when set. */
  publicUrl: Schema.optionalKey(Schema.String),
  features: Schema.Struct({ aic: Schema.Boolean, sip: Schema.Boolean, rtmp: Schema.Boolean }),
  capacity: Schema.Struct({ mediaWorkers: Schema.Int }),
  /** Epoch ms. */
  startedAt: Schema.Number
})
export type BridgeRegistration = typeof BridgeRegistration.Type

/** The answer to a registration (201, or 200 when the bridge was known): the id to use, and the heartbeat period it asks for. */
export const BridgeRegistered = Schema.Struct({
  bridgeId: Schema.String,
  heartbeatIntervalMs: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThan(0)))
})
export type BridgeRegistered = typeof BridgeRegistered.Type

/** AIC pipeline totals since start. */
export const AicLoad = Schema.Struct({
  pipelines: Schema.Int,
  framesProcessed: Schema.Int,
  framesCompressed: Schema.Int,
  bandwidthSavedBytes: Schema.Number
})

/** `PUT /api/v1/bridges/{bridgeId}/heartbeat` (answered 200 or 204; 404: the Dashboard does not know the bridge). */
export const BridgeHeartbeat = Schema.Struct({
  bridgeId: Schema.String,
  /** Epoch ms. */
  at: Schema.Number,
  load: Schema.Struct({
    /** Sessions open on this instance. */
    sessions: Schema.Int,
    /** Participants in the rooms this service tracks, when the room store answered. */
    participants: Schema.optionalKey(Schema.Int),
    /** Process CPU time over the last interval, in percent of one core. */
    cpuPercent: Schema.Number,
    aic: AicLoad
  })
})
export type BridgeHeartbeat = typeof BridgeHeartbeat.Type
