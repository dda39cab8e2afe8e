import { Schema } from "effect"

export const Liveness = Schema.Struct({
  status: Schema.Literal("healthy"),
  timestamp: Schema.Number
})

export const DependencyState = Schema.Struct({
  name: Schema.String,
  critical: Schema.Boolean,
  status: Schema.Literals(["up", "down"]),
  latencyMs: Schema.Number,
  error: Schema.optionalKey(Schema.String)
})

export const Readiness = Schema.Struct({
  status: Schema.Literals(["ready", "not_ready"]),
  shuttingDown: Schema.Boolean,
  dependencies: Schema.Array(DependencyState)
})

/** `/ready` answers 503 with the same body when a critical dependency is down or shutdown began (an untagged error: no `_tag` in the body). */
export class NotReady extends Schema.Error<NotReady>("NotReady")({
  status: Schema.Literal("not_ready"),
  shuttingDown: Schema.Boolean,
  dependencies: Schema.Array(DependencyState)
}, { httpApiStatus: 503 }) {}

/**
 * `/status`: everyone gets the `summary` view (identity, uptime, features, and per component its
 * counters, flags and state words at any depth, lists as their length); operators (the provisioning key, or an access
 * token with the `operator` scope) get the `full` view with the process and every component's details
 * (pids, session ids, directories, targets).
 */
export const ServiceStatus = Schema.Struct({
  view: Schema.Literals(["summary", "full"]),
  service: Schema.Struct({
    name: Schema.String,
    version: Schema.String,
    environment: Schema.String,
    region: Schema.String,
    bridgeId: Schema.String,
    uptimeSeconds: Schema.Number,
    startedAt: Schema.String
  }),
  process: Schema.optionalKey(Schema.Struct({
    pid: Schema.Number,
    node: Schema.String,
    rssBytes: Schema.Number,
    heapUsedBytes: Schema.Number
  })),
  features: Schema.Struct({ aic: Schema.Boolean, sip: Schema.Boolean, rtmp: Schema.Boolean }),
  components: Schema.Record(Schema.String, Schema.Unknown)
})
