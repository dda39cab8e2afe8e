import { Clock, Context, Duration, Effect, Fiber, Layer, Option, Ref } from "effect"
import { Counter } from "prom-client"
import type { BridgeHeartbeat, BridgeRegistration } from "../schemas/dashboard.ts"
import { AicMetrics } from "./aicore/metrics.ts"
import { AppConfig } from "./Config.ts"
import { type DashboardClient, DashboardError, makeDashboardClient } from "./dashboard/client.ts"
import { Health } from "./Health.ts"
import { Metrics } from "./Metrics.ts"
import { reconnectBackoff } from "./resilience/reconnect.ts"
import { RoomStore } from "./RoomStore.ts"
import { Sessions } from "./SessionStore.ts"

export { DashboardError } from "./dashboard/client.ts"

/** This bridge's standing with the Dashboard, for `/status`, readiness and tests. */
export interface DashboardState {
  /** False when DASHBOARD_URL is unset: registration is off. */
  readonly enabled: boolean
  readonly registered: boolean
  /** The id the Dashboard knows this bridge by (BRIDGE_ID unless its registration answer named another). */
  readonly bridgeId: string
  /** Epoch ms of the last heartbeat the Dashboard accepted. */
  readonly lastHeartbeatAt: Option.Option<number>
  readonly lastError: Option.Option<string>
  readonly heartbeats: { readonly ok: number; readonly failed: number }
  readonly registrations: { readonly ok: number; readonly failed: number }
}

type Result = "ok" | "failed"

const statusSection = (s: DashboardState) => ({
  enabled: s.enabled,
  registered: s.registered,
  bridge_id: s.bridgeId,
  last_heartbeat_at: Option.match(s.lastHeartbeatAt, { onNone: () => null, onSome: (at) => new Date(at).toISOString() }),
  last_error: Option.getOrNull(s.lastError),
  heartbeats: s.heartbeats,
  registrations: s.registrations
})

/** Process CPU time since the previous call, in percent of one core. */
const cpuMeter = () => {
  let last = { usage: process.cpuUsage(), at: performance.now() }
  return Effect.sync(() => {
    const now = { usage: process.cpuUsage(), at: performance.now() }
    const cpuMicros = now.usage.user - last.usage.user + now.usage.system - last.usage.system
    const elapsedMs = Math.max(now.at - last.at, 1)
    last = now
    return Math.round((cpuMicros / 1000 / elapsedMs) * 1000) / 10
  })
}

/**
 * Registers this bridge with the Dashboard (DASHBOARD_URL), sends a heartbeat with its load every
 * DASHBOARD_HEARTBEAT_MS and deregisters when released. Start-up never waits on the Dashboard:
 * registration runs in the background and retries with jittered exponential backoff; a heartbeat
 * answered 404 (the Dashboard forgot the bridge) registers again. Metrics:
 * `auralink_dashboard_registrations_total{result}`, `auralink_dashboard_heartbeats_total{result}`.
 */
export class Dashboard extends Context.Service<Dashboard, {
  readonly state: Effect.Effect<DashboardState>
}>()("auralink/Dashboard") {
  static readonly layer = Layer.effect(
    Dashboard,
    Effect.gen(function*() {
      const config = yield* AppConfig
      const settings = config.dashboard
      const health = yield* Health
      const { registry } = yield* Metrics
      const counter = (name: string, help: string) => {
        const c = new Counter({ name, help, labelNames: ["result"] as const, registers: [registry] })
        for (const result of ["ok", "failed"] as const) c.inc({ result }, 0)
        return c
      }
      const registrationsTotal = counter("auralink_dashboard_registrations_total", "Registration attempts with the Dashboard, by result")
      const heartbeatsTotal = counter("auralink_dashboard_heartbeats_total", "Heartbeats sent to the Dashboard, by result")
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          registry.removeSingleMetric("auralink_dashboard_registrations_total")
          registry.removeSingleMetric("auralink_dashboard_heartbeats_total")
        })
      )

      const stateRef = yield* Ref.make<DashboardState>({
        enabled: Option.isSome(settings.url),
        registered: false,
        bridgeId: config.service.bridgeId,
        lastHeartbeatAt: Option.none(),
        lastError: Option.none(),
        heartbeats: { ok: 0, failed: 0 },
        registrations: { ok: 0, failed: 0 }
      })
      const state = Ref.get(stateRef)
      yield* health.section("dashboard", Effect.map(state, statusSection))

      if (Option.isNone(settings.url)) {
        yield* Effect.logInfo("dashboard registration off: DASHBOARD_URL unset")
        return { state }
      }
      const client = makeDashboardClient(settings.url.value, settings.apiKey, settings.timeoutMs)
      if (Option.isNone(settings.apiKey)) yield* Effect.logWarning("dashboard: DASHBOARD_API_KEY unset, calls carry no Authorization")
      yield* health.register({
        name: "dashboard",
        critical: false,
        check: Effect.flatMap(state, (s) => s.registered ? Effect.void : Effect.fail(Option.getOrElse(s.lastError, () => "not registered yet")))
      })

      const loop = bridgeLoop(client, stateRef, {
        registration: {
          bridgeId: config.service.bridgeId,
          region: config.service.region,
          version: config.service.version,
          environment: config.service.environment,
          ...Option.match(settings.publicUrl, { onNone: () => ({}), onSome: (publicUrl) => ({ publicUrl }) }),
          features: { aic: config.features.aic, sip: config.features.sip, rtmp: config.features.rtmp },
          capacity: { mediaWorkers: config.media.workers },
          startedAt: yield* Clock.currentTimeMillis
        },
        load: yield* loadProbe,
        heartbeatMs: settings.heartbeatMs,
        retryBaseMs: settings.retryBaseMs,
        retryMaxMs: settings.retryMaxMs,
        count: (kind, result) => Effect.sync(() => (kind === "registration" ? registrationsTotal : heartbeatsTotal).inc({ result }))
      })
      yield* Effect.logInfo("dashboard registration on").pipe(Effect.annotateLogs({ dashboardUrl: settings.url.value, bridgeId: config.service.bridgeId }))
      const fiber = yield* Effect.forkScoped(loop)
      // Runs before the fork's own finalizer: the loop stops first, then the bridge is deregistered (each call bounded by DASHBOARD_TIMEOUT_MS).
      yield* Effect.addFinalizer(() =>
        Effect.gen(function*() {
          yield* Fiber.interrupt(fiber)
          const s = yield* state
          if (!s.registered) return
          yield* client.deregister(s.bridgeId).pipe(
            Effect.andThen(Effect.logInfo("dashboard: deregistered")),
            Effect.catch((error) => Effect.logWarning(`dashboard: deregistration failed: ${error.message}`))
          )
          yield* Ref.update(stateRef, (x) => ({ ...x, registered: false }))
        })
      )
      return { state }
    })
  )
}

/** The load a heartbeat reports: sessions open here, participants in active tracked rooms (when the store answers), CPU, AIC totals. */
const loadProbe = Effect.gen(function*() {
  const sessions = yield* Sessions
  const rooms = yield* RoomStore
  const aic = yield* AicMetrics
  const cpu = cpuMeter()
  return Effect.gen(function*() {
    const open = yield* sessions.openHere
    const participants = yield* Effect.option(Effect.flatMap(rooms.rooms, (all) =>
      Effect.map(
        Effect.forEach(all.filter((r) => r.state === "active"), (r) => rooms.participantCount(r.name), { concurrency: 8 }),
        (counts) => counts.reduce((sum, n) => sum + n, 0)
      )))
    const totals = aic.totals()
    const load: BridgeHeartbeat["load"] = {
      sessions: open.length,
      ...Option.match(participants, { onNone: () => ({}), onSome: (n) => ({ participants: n }) }),
      cpuPercent: yield* cpu,
      aic: {
        pipelines: totals.pipelines,
        framesProcessed: totals.framesProcessed,
        framesCompressed: totals.framesCompressed,
        bandwidthSavedBytes: totals.bandwidthSavedBytes
      }
    }
    return load
  })
})

interface LoopOptions {
  readonly registration: BridgeRegistration
  readonly load: Effect.Effect<BridgeHeartbeat["load"]>
  readonly heartbeatMs: number
  readonly retryBaseMs: number
  readonly retryMaxMs: number
  readonly count: (kind: "registration" | "heartbeat", result: Result) => Effect.Effect<void>
}

/** Register (retrying), then heartbeat until the Dashboard forgets the bridge; again, for as long as the layer lives. */
const bridgeLoop = (client: DashboardClient, stateRef: Ref.Ref<DashboardState>, options: LoopOptions) => {
  const failed = (error: DashboardError, counts: (s: DashboardState) => Partial<DashboardState>) =>
    Ref.update(stateRef, (s) => ({ ...s, ...counts(s), lastError: Option.some(error.message) }))

  const registerOnce = Effect.gen(function*() {
    const answer = yield* client.register(options.registration).pipe(
      Effect.tapError((error) =>
        Effect.all([
          options.count("registration", "failed"),
          failed(error, (s) => ({ registrations: { ...s.registrations, failed: s.registrations.failed + 1 } })),
          Effect.logWarning(`dashboard: registration failed, retrying: ${error.message}`)
        ])
      )
    )
    yield* options.count("registration", "ok")
    yield* Ref.update(stateRef, (s) => ({
      ...s,
      registered: true,
      bridgeId: answer.bridgeId,
      lastError: Option.none(),
      registrations: { ...s.registrations, ok: s.registrations.ok + 1 }
    }))
    yield* Effect.logInfo("dashboard: registered").pipe(Effect.annotateLogs({ bridgeId: answer.bridgeId }))
    return { bridgeId: answer.bridgeId, intervalMs: answer.heartbeatIntervalMs ?? options.heartbeatMs }
  })

  /** One heartbeat; true while the Dashboard still knows the bridge. */
  const heartbeat = (bridgeId: string) =>
    Effect.gen(function*() {
      const load = yield* options.load
      const at = yield* Clock.currentTimeMillis
      const outcome = yield* Effect.result(client.heartbeat(bridgeId, { bridgeId, at, load }))
      if (outcome._tag === "Success") {
        yield* options.count("heartbeat", "ok")
        yield* Ref.update(
          stateRef,
          (s) => ({ ...s, lastHeartbeatAt: Option.some(at), lastError: Option.none(), heartbeats: { ...s.heartbeats, ok: s.heartbeats.ok + 1 } })
        )
        return true
      }
      const error = outcome.failure
      const forgotten = error.status === 404
      yield* options.count("heartbeat", "failed")
      yield* failed(error, (s) => ({ heartbeats: { ...s.heartbeats, failed: s.heartbeats.failed + 1 }, ...(forgotten ? { registered: false } : {}) }))
      yield* Effect.logWarning(forgotten ? "dashboard: the Dashboard forgot this bridge, registering again" : `dashboard: heartbeat failed: ${error.message}`)
      return !forgotten
    })

  const session = Effect.gen(function*() {
    const { bridgeId, intervalMs } = yield* Effect.retry(registerOnce, reconnectBackoff(options.retryBaseMs, options.retryMaxMs))
    let known = true
    while (known) {
      yield* Effect.sleep(Duration.millis(intervalMs))
      known = yield* heartbeat(bridgeId)
    }
  })
  return Effect.forever(session)
}
