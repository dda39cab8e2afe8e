import { Effect, Option } from "effect"
import { Cluster } from "../../layers/Cluster.ts"
import { type AdmissionRefusal, ClusterMetrics } from "../../layers/cluster/metrics.ts"
import type { SessionOwner } from "../../layers/SessionStore.ts"
import { ServiceUnavailable } from "../../schemas/unavailable.ts"
import { Membership } from "./membership.ts"

/** Retry-After of a refused new session: about one heartbeat, when loads have moved. */
const REFUSED_RETRY_AFTER_SECONDS = 2

/** The alive, not draining instance with the most room, other than this one (from the last heartbeats). */
const lessLoaded = Effect.gen(function*() {
  const cluster = yield* Cluster
  const all = yield* Effect.orElseSucceed(cluster.instances, () => [])
  const room = all
    .filter((i) => i.state === "alive" && !i.self && !i.draining && i.sessions < i.capacity)
    .sort((a, b) => a.sessions / a.capacity - b.sessions / b.capacity)
  return Option.map(Option.fromNullishOr(room[0]), (i) => i.publicUrl)
})

/** The 503 of a refused new session, with the hint to a less loaded instance when there is one. */
export const refuseNewSession = (reason: AdmissionRefusal) =>
  Effect.gen(function*() {
    yield* (yield* ClusterMetrics).refused(reason)
    const alternate = yield* lessLoaded
    const why = reason === "draining" ? "This instance is draining" : "This instance is at capacity"
    return yield* new ServiceUnavailable({
      detail: Option.match(alternate, { onNone: () => `${why}; retry later`, onSome: (url) => `${why}; retry at ${url}` }),
      retryAfterSeconds: REFUSED_RETRY_AFTER_SECONDS,
      ...Option.match(alternate, { onNone: () => ({}), onSome: (url) => ({ alternate: url }) })
    })
  })

/**
 * Admission control for a new session: refused (503) while draining; otherwise the owner to record
 * with it, whose capacity the session store checks atomically with the insert (InstanceFull).
 */
export const admitNewSession = Effect.gen(function*() {
  const membership = yield* Membership
  if (yield* membership.draining) return yield* refuseNewSession("draining")
  const owner: SessionOwner = { instance: (yield* Cluster).self.id, capacity: membership.capacity }
  return owner
})
