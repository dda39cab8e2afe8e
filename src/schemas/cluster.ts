import { Schema } from "effect"

/** One instance as it registers itself in the state store (and as `GET /api/cluster` lists it). */
export const InstanceRecord = Schema.Struct({
  id: Schema.String,
  /** Where clients reach this instance: requests for its sessions are redirected here. */
  publicUrl: Schema.String,
  region: Schema.String,
  bridgeId: Schema.String,
  version: Schema.String,
  /** Open (pending or active) sessions it may own at once. */
  capacity: Schema.Int,
  /** Open sessions it owns, as of its last heartbeat. */
  sessions: Schema.Int,
  /** Draining: refuses new sessions, its clients were told to go elsewhere. */
  draining: Schema.Boolean,
  startedAt: Schema.String,
  heartbeatAt: Schema.String
})
export type InstanceRecord = typeof InstanceRecord.Type

export const InstanceView = Schema.Struct({
  ...InstanceRecord.fields,
  /** `alive` while it heartbeats; `lost` once its registration expired (until its sessions are ended). */
  state: Schema.Literals(["alive", "lost"]),
  self: Schema.Boolean
})
export type InstanceView = typeof InstanceView.Type

export const ClusterListing = Schema.Struct({
  self: Schema.String,
  instances: Schema.Array(InstanceView)
})

export const DrainStarted = Schema.Struct({
  draining: Schema.Literal(true),
  /** Open sessions this instance owned when the drain began. */
  sessions: Schema.Int,
  /** When the sessions still open are ended (reason `shutdown`). */
  deadline: Schema.String
})

/** The session's owner refused it: this instance holds as many open sessions as its capacity allows. */
export class InstanceFull extends Schema.TaggedError<InstanceFull>()("InstanceFull", {
  capacity: Schema.Int
}) {}
