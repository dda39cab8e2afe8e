import { Context, Duration, Effect, Layer, Option, Ref } from "effect"
import { availableParallelism } from "node:os"
import { Cluster, registrationTtlMs } from "../../layers/Cluster.ts"
import { ClusterMetrics } from "../../layers/cluster/metrics.ts"
import { AppConfig } from "../../layers/Config.ts"
import { Health } from "../../layers/Health.ts"
import { StateStore } from "../../layers/StateStore.ts"
import { SessionEvents } from "../../layers/sessions/events.ts"
import { SessionMetrics } from "../../layers/sessions/metrics.ts"
import { Sessions } from "../../layers/SessionStore.ts"
import { SERVICE_VERSION } from "../../config/settings.ts"
import type { InstanceRecord } from "../../schemas/cluster.ts"
import { announce } from "../sessions/transition.ts"

/** The reason (session `error`, session_events) of a session whose instance stopped heartbeating. */
const INSTANCE_LOST_REASON = "instance lost"
const BATCH = 500

/**
 * Ends the open sessions of `owner`, an instance that is gone: under a lease, so of the survivors
 * one does it; then forgets it. Returns how many sessions this call ended.
 */
const endSessionsOf = (owner: string, holder: string, leaseMs: number) =>
  Effect.gen(function*() {
    const store = (yield* StateStore).namespace("cluster")
    if (!(yield* store.holdLease(`reap:${owner}`, holder, leaseMs))) return 0
    const sessions = yield* Sessions
    let total = 0
    while (true) {
      const done = yield* sessions.failOwnedBy(owner, BATCH, { actor: "cluster", reason: INSTANCE_LOST_REASON })
      yield* Effect.forEach(done, ({ from, session }) => announce(from, session), { discard: true })
      total += done.length
      if (done.length < BATCH) break
    }
    yield* (yield* Cluster).forget(owner)
    yield* (yield* ClusterMetrics).sessionsLost(total)
    yield* Effect.logWarning("instance lost: its sessions ended").pipe(Effect.annotateLogs({ event: "instance_lost", instance: owner, sessions: total }))
    return total
  })

/**
 * This instance in the cluster: its capacity, whether it drains, and its registration, renewed
 * every fifth of INSTANCE_TTL_MS with its current load. Each round also looks for lost instances
 * (registration expired: two thirds of the TTL) and ends their sessions, so a dead instance's
 * sessions end within INSTANCE_TTL_MS; an instance does so once it has itself been registered for
 * that long. With the in-memory store (one instance, embedded or not) only the sessions left by
 * earlier runs of an embedded database are ended, once at start.
 */
export class Membership extends Context.Service<Membership, {
  readonly capacity: number
  readonly draining: Effect.Effect<boolean>
  /** From now on: refuse new sessions, and say so in the registration. */
  readonly startDraining: Effect.Effect<void>
}>()("auralink/cluster/Membership") {
  static readonly layer = Layer.effect(
    Membership,
    Effect.gen(function*() {
      const config = yield* AppConfig
      const cluster = yield* Cluster
      const metrics = yield* ClusterMetrics
      const sessions = yield* Sessions
      const services = yield* Effect.context<StateStore | Cluster | ClusterMetrics | Sessions | SessionEvents | SessionMetrics>()
      const { capacity: configured, instanceTtlMs, sessionsPerCore } = config.cluster
      const capacity = configured > 0 ? configured : sessionsPerCore * availableParallelism()
      const draining = yield* Ref.make(false)
      const startedAt = new Date().toISOString()
      const { id, publicUrl } = cluster.self

      const record = Effect.gen(function*() {
        const mine: InstanceRecord = {
          id,
          publicUrl,
          region: config.service.region,
          bridgeId: config.service.bridgeId,
          version: SERVICE_VERSION,
          capacity,
          sessions: yield* sessions.countOwned(id),
          draining: yield* Ref.get(draining),
          startedAt,
          heartbeatAt: new Date().toISOString()
        }
        return mine
      })
      const heartbeat = Effect.gen(function*() {
        const mine = yield* record
        yield* metrics.load(mine)
        yield* cluster.publish(mine)
      })
      const reap = Effect.gen(function*() {
        const all = yield* cluster.instances
        const alive = all.filter((i) => i.state === "alive").map((i) => i.id)
        yield* metrics.instances(alive.length, all.length - alive.length)
        const gone = new Set([...(yield* sessions.ownersOtherThan([id, ...alive])), ...all.filter((i) => i.state === "lost").map((i) => i.id)])
        yield* Effect.forEach(gone, (owner) => endSessionsOf(owner, id, instanceTtlMs), { discard: true })
      }).pipe(Effect.provideContext(services))

      const every = Duration.millis(instanceTtlMs / 5)
      const quietFor = registrationTtlMs(instanceTtlMs)
      // Since when this instance's heartbeats have all got through: after a Redis outage every
      // registration has expired, so no instance reaps until the others had time to register again.
      let registeredSince: number | undefined
      const round = Effect.gen(function*() {
        const ok = yield* Effect.exit(heartbeat)
        const now = Date.now()
        if (ok._tag === "Failure") {
          registeredSince = undefined
          return yield* Effect.logWarning("cluster heartbeat failed", ok.cause)
        }
        registeredSince ??= now
        if (now - registeredSince >= quietFor) yield* reap
      }).pipe(Effect.catchCause((cause) => Effect.logWarning("looking for lost instances failed", cause)))

      if (cluster.shared) {
        yield* round
        yield* Effect.sleep(every).pipe(Effect.andThen(round), Effect.forever, Effect.forkScoped)
      } else {
        yield* Effect.ignore(heartbeat)
        // One instance: only an embedded database's earlier runs can have left sessions open.
        if (Option.isNone(config.database.url)) yield* reap.pipe(Effect.catchCause((cause) => Effect.logWarning("ending earlier runs' sessions failed", cause)))
        else yield* metrics.instances(1, 0)
        yield* Effect.sleep(every).pipe(Effect.andThen(Effect.ignore(heartbeat)), Effect.forever, Effect.forkScoped)
      }
      // Leaving: no longer listed (its sessions were ended by the drain before this runs).
      yield* Effect.addFinalizer(() => cluster.forget(id).pipe(Effect.ignore))

      yield* (yield* Health).section(
        "cluster",
        Effect.gen(function*() {
          const listed = yield* Effect.option(cluster.instances)
          return {
            instance: id,
            public_url: publicUrl,
            shared: cluster.shared,
            capacity,
            sessions: yield* Effect.orElseSucceed(sessions.countOwned(id), () => null),
            draining: yield* Ref.get(draining),
            instances: Option.getOrNull(
              Option.map(
                listed,
                (all) =>
                  all.map((i) => ({ id: i.id, state: i.state, public_url: i.publicUrl, sessions: i.sessions, capacity: i.capacity, draining: i.draining }))
              )
            )
          }
        })
      )

      return {
        capacity,
        draining: Ref.get(draining),
        // The registration says so at once, in the background: a slow Redis must not hold the drain up.
        startDraining: Ref.set(draining, true).pipe(Effect.andThen(Effect.forkDetach(Effect.ignore(heartbeat))), Effect.asVoid)
      }
    })
  )
}
