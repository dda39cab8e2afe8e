import { Schema } from "effect"

export const Liveness = Schema.Struct({
  status: Schema.Literal("healthy"),
  timestamp: Schema.Number
})

/** The seed's dependencies: `/ready` lists each one, `unconfigured` until a layer registers its probe. */
export const KNOWN_DEPENDENCIES = ["postgres", "redis", "dashboard", "ai_core", "webrtc_server", "communication_service"] as const

/** The seed's `/status` sections (plus the infrastructure ones): each is present, `{ status: "unconfigured" }` until a layer registers it. */
export const KNOWN_SECTIONS = ["aic_compression", "room_sync", "database", "redis", "auraid", "dashboard"] as const

export const DependencyState = Schema.Struct({
  status: Schema.Literals(["up", "down", "unconfigured"]),
  /** How long the probe took; null when nothing was probed. */
  latencyMs: Schema.NullOr(Schema.Number),
  /** The last failure seen, kept after the dependency is up again; null if it never failed. */
  lastError: Schema.NullOr(Schema.String),
  /** A critical dependency that is down turns `/ready` to 503 (READY_CRITICAL_DEPENDENCIES). */
  critical: Schema.Boolean
})

/** Every dependency by name: the seed's (KNOWN_DEPENDENCIES) first, then the others registered. */
const Dependencies = Schema.Record(Schema.String, DependencyState)

export const Readiness = Schema.Struct({
  status: Schema.Literals(["ready", "not_ready"]),
  shuttingDown: Schema.Boolean,
  dependencies: Dependencies
})

/** `/ready` answers 503 with the same body when a critical dependency is down or shutdown began (an untagged error: no `_tag` in the body). */
export class NotReady extends Schema.Error<NotReady>("NotReady")({
  status: Schema.Literal("not_ready"),
  shuttingDown: Schema.Boolean,
  dependencies: Dependencies
}, { httpApiStatus: 503 }) {}

/**
 * `/status`: everyone gets the `summary` view (identity, uptime, features, and per section its
 * counters, flags and state words at any depth, lists as their length); operators (the provisioning key, or an access
 * token with the `operator` scope) get the `full` view with the process and every section's details
 * (pids, session ids, directories, targets). Sections sit at the top level, next to `service`:
 * the seed's (`aic_compression`, `room_sync`), `database` (with its pool), `redis`, `auraid`,
 * `dashboard`, and the others (`media`, `sessions`, `participants`, ...).
 */
export const ServiceStatus = Schema.StructWithRest(
  Schema.Struct({
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
    features: Schema.Struct({ aic: Schema.Boolean, sip: Schema.Boolean, rtmp: Schema.Boolean })
  }),
  [Schema.Record(Schema.String, Schema.Unknown)]
)
