import { Effect } from "effect"
import { between, count, countOrZero, key, ms, rule } from "./key.ts"

const SHUTDOWN_TIMEOUT = key("SHUTDOWN_TIMEOUT_MS", "auralink.service.shutdown_timeout_ms")

/** Several instances over one Postgres and Redis: registration, admission control and drain. */
export const cluster = Effect.all({
  /**
   * An instance that has not heartbeaten for this long is lost: its open sessions move to `error`
   * (reason `instance lost`), done by a surviving instance within this time.
   */
  instanceTtlMs: key("INSTANCE_TTL_MS", "auralink.cluster.instance_ttl_ms").int(15_000, between("milliseconds", 1000, 600_000)),
  /** Open sessions this instance may own at once; 0: SESSIONS_PER_CORE x the cores Node may use. */
  capacity: key("INSTANCE_CAPACITY", "auralink.cluster.capacity").int(0, countOrZero),
  /** Derives the capacity when INSTANCE_CAPACITY is 0 (bench/audio-ingest: ~50 audio sessions per core keep < 1 % loss). */
  sessionsPerCore: key("SESSIONS_PER_CORE", "auralink.cluster.sessions_per_core").int(50, count),
  /** After SIGTERM or `POST /api/admin/drain`: how long running sessions may go on before they are ended (reason `shutdown`). */
  drainTimeoutMs: Effect.flatMap(SHUTDOWN_TIMEOUT.int(30_000, ms), (shutdown) =>
    key("DRAIN_TIMEOUT_MS", "auralink.cluster.drain_timeout_ms")
      .int(
        Math.min(20_000, Math.floor(shutdown * 2 / 3)),
        rule("milliseconds >= 0, below SHUTDOWN_TIMEOUT_MS (ending sessions and closing take the rest)", (n) => n >= 0 && n < shutdown)
      ))
})
