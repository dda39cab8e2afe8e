import { Context, Deferred, Duration, Effect, FiberSet, Layer, Option, PubSub, Queue, Redacted, Schedule, Semaphore, Stream } from "effect"
import type { Scope } from "effect"
import type { types } from "mediasoup"
import { Counter, Gauge } from "prom-client"
import { EVENTS_CHANNEL_LABEL, EVENTS_CHANNEL_PROTOCOL } from "../schemas/audio.ts"
import {
  type EventsChannel,
  type IceServer,
  type MediaNotFound,
  MediaRejected,
  mediaNotFound,
  type PlainTransportInfo,
  type WebRtcTransportInfo
} from "../schemas/webrtc.ts"
import { serviceUnavailable, type ServiceUnavailable } from "../schemas/unavailable.ts"
import { AppConfig } from "./Config.ts"
import { errorMessage } from "./error-message.ts"
import { Health } from "./Health.ts"
import { routerCodecs } from "./media/codecs.ts"
import type { MediaFact } from "./media/facts.ts"
import { plainJson } from "./media/plain-json.ts"
import { plainListenInfo, type PortRange, splitPorts, webRtcServerOptions, webRtcTransportOptions } from "./media/listen.ts"
import { type ProducerAdded, SessionMedia, type TransportEntry } from "./media/session-media.ts"
import { producerStats, type SessionStats, transportStats } from "./media/stats.ts"
import { makeWorkerHealth } from "./media/worker-health.ts"
import { useBundledMediaWorker } from "./media/workerEnv.ts"
import { Metrics } from "./Metrics.ts"
import { type DataProducerId, ProducerId, TransportId } from "../schemas/ids.ts"

export type { MediaFact } from "./media/facts.ts"
export type { ProducerAdded } from "./media/session-media.ts"
export type { ProducerStats, RtpStreamStats, SessionStats, TransportStats } from "./media/stats.ts"

/** A server-side consumer of one producer over a DirectTransport: `consumer.on("rtp", (packet: Buffer) => …)`. */
export interface DirectConsumer {
  readonly transport: types.DirectTransport
  readonly consumer: types.Consumer
}
/** A server-side data consumer over a DirectTransport: `dataConsumer.on("message", (message: Buffer, ppid: number) => …)`. */
export interface DirectDataConsumer {
  readonly transport: types.DirectTransport
  readonly dataConsumer: types.DataConsumer
}

export interface WorkerStatus {
  readonly index: number
  readonly pid: number
  readonly routers: number
  /** The ports of its WebRtcServer, which every WebRTC transport of the worker shares (none in port-range mode). */
  readonly webRtcServer?: { readonly udp: number; readonly tcp: number }
  /** No answer to a probe or request within MEDIASOUP_WORKER_TIMEOUT_MS: new sessions avoid it, its requests get 503. */
  readonly stalled: boolean
}

/** A WebRTC transport's own parameters, for an SDP answer. */
export interface WebRtcEndpoint {
  readonly id: TransportId
  readonly iceParameters: types.IceParameters
  readonly iceCandidates: ReadonlyArray<types.IceCandidate>
  readonly dtlsParameters: types.DtlsParameters
}

type Lookup<A> = Effect.Effect<A, MediaNotFound>
/** ServiceUnavailable: the session's worker is stalled (503 at once, or after MEDIASOUP_WORKER_TIMEOUT_MS). */
type Op<A> = Effect.Effect<A, MediaNotFound | MediaRejected | ServiceUnavailable>

/** A mediasoup call on client-supplied parameters: its rejection is the client's 400. */
const rejected = (e: unknown) => new MediaRejected({ detail: errorMessage(e) })
/** A mediasoup call on our own parameters: its rejection is a defect. */
const defect = (e: unknown): never => {
  throw e
}
const closeLate = (late: { close: () => void }) => late.close()

/** How long a client should wait after a 503 for lack of RTC ports. */
export const PORTS_RETRY_AFTER_SECONDS = 5

/** The worker's refusal for lack of a free port ("no more available ports [protocol:udp, ...]"). */
const isPortsExhausted = (message: string) => /no more available ports/i.test(message)

/** The refusal of a mediasoup call that binds RTC ports: none free is a 503 (retry later); any other failure stays a defect. */
const portsOrDefect = (exhausted: () => void) => (e: unknown): ServiceUnavailable => {
  if (!isPortsExhausted(errorMessage(e))) return defect(e)
  exhausted()
  return serviceUnavailable("No free RTC port on the media server; retry later", PORTS_RETRY_AFTER_SECONDS)
}

/** A worker slot: its index, its slice of the RTC port range, and its worker (and WebRtcServer) once started. */
interface WorkerSlot {
  readonly index: number
  readonly ports: PortRange
  worker: types.Worker | undefined
  server: { readonly server: types.WebRtcServer; readonly udp: number; readonly tcp: number } | undefined
}

const closingSignals = ["SIGINT", "SIGTERM"] as const
/**
 * Runs `create` (a worker's creation) and takes away the SIGINT/SIGTERM listeners it added:
 * mediasoup (since 3.19.22) closes its workers on those signals itself, which would cut every
 * session's media before the service's drain has told clients and ended the sessions; the
 * layer's release closes the workers after that.
 */
const withoutSignalClose = async <A>(create: () => Promise<A>): Promise<A> => {
  const before = closingSignals.map((signal) => new Set(process.listeners(signal)))
  try {
    return await create()
  } finally {
    closingSignals.forEach((signal, i) => {
      for (const listener of process.listeners(signal)) if (!before[i]!.has(listener)) process.removeListener(signal, listener)
    })
  }
}

/** mediasoup's worker log tags (the worker ignores any other tag, so MEDIASOUP_LOG_TAGS' others are dropped). */
const workerLogTags: Readonly<Record<types.WorkerLogTag, true>> = {
  info: true,
  ice: true,
  dtls: true,
  rtp: true,
  srtp: true,
  rtcp: true,
  rtx: true,
  bwe: true,
  score: true,
  simulcast: true,
  svc: true,
  sctp: true,
  message: true
}
const isWorkerLogTag = (tag: string): tag is types.WorkerLogTag => Object.hasOwn(workerLogTags, tag)

/**
 * mediasoup workers (one per core by default, each with its own slice of the RTC port range) and
 * one router per session on the least-loaded worker. Every transport, producer and consumer is
 * made here and filed under its session, so a session's media can be closed in one go. It states
 * facts (`facts`) and offers operations; what a session's end or a worker's death means for the
 * other is decided by the media lifecycle program.
 */
export class MediaServer extends Context.Service<MediaServer, {
  readonly rtpCapabilities: (sessionId: string) => Effect.Effect<types.RtpCapabilities, ServiceUnavailable>
  /** Every router's RTP capabilities (all are made with the same codecs), read once at start-up: for offers checked before a session exists. */
  readonly routerCapabilities: types.RtpCapabilities
  /** ServiceUnavailable: the worker is stalled, or has no free RTC port. */
  readonly createWebRtcTransport: (sessionId: string) => Effect.Effect<WebRtcTransportInfo, ServiceUnavailable>
  /** A WebRTC transport for a WHIP publisher (counted among the client's transports), with mediasoup's own typed parameters. */
  readonly createWebRtcEndpoint: (sessionId: string) => Effect.Effect<WebRtcEndpoint, ServiceUnavailable>
  /**
   * A WHEP viewer's WebRTC transport (not counted among the client's: it only consumes), on a
   * router of its own made with `codecs` (the viewer's payload types: a consumer sends with its
   * router's) and fed from the session's `producers`; the viewer's consumers consume the ids
   * returned for them. Router and pipes close with the transport or the session.
   */
  readonly createViewerEndpoint: (
    sessionId: string,
    codecs: ReadonlyArray<types.RouterRtpCodecCapability>,
    producers: ReadonlyArray<ProducerId>
  ) => Effect.Effect<
    { readonly endpoint: WebRtcEndpoint; readonly piped: ReadonlyMap<ProducerId, ProducerId> },
    MediaNotFound | MediaRejected | ServiceUnavailable
  >
  /** A consumer on the session's WebRTC transport of `producerId`, sent with the receiver's capabilities (closed with the transport). */
  readonly consume: (sessionId: string, transportId: TransportId, producerId: ProducerId, rtpCapabilities: types.RtpCapabilities) => Op<types.Consumer>
  /** The producers of the session (audio and video) with their kinds, in the order they were made. */
  readonly producers: (
    sessionId: string
  ) => Effect.Effect<ReadonlyArray<{ readonly id: ProducerId; readonly kind: "audio" | "video"; readonly codec: types.RtpCodecParameters | undefined }>>
  /** Whether the session has media (a router) on this instance. Synchronous: read while listing resources. */
  readonly hasMedia: (sessionId: string) => boolean
  /** Whether the session's transport is still open here. Synchronous: read while listing resources. */
  readonly transportOpen: (sessionId: string, transportId: string) => boolean
  readonly connectTransport: (sessionId: string, transportId: TransportId, dtlsParameters: types.DtlsParameters) => Op<void>
  readonly restartIce: (sessionId: string, transportId: TransportId) => Op<types.IceParameters>
  readonly closeTransport: (sessionId: string, transportId: TransportId) => Lookup<void>
  readonly transportStats: (
    sessionId: string,
    transportId: TransportId
  ) => Op<{ transport: ReadonlyArray<unknown>; producers: ReadonlyArray<{ id: string; kind: string; stats: ReadonlyArray<unknown> }> }>
  /**
   * What mediasoup measures of the session's producers (per RTP stream) and client transports, as plain numbers.
   * Objects that close while being read are left out; MediaNotFound: no media for the session on this instance.
   */
  readonly sessionStats: (sessionId: string) => Effect.Effect<SessionStats, MediaNotFound | ServiceUnavailable>
  readonly createPlainTransport: (
    sessionId: string,
    options: { readonly rtcpMux?: boolean; readonly enableSrtp?: boolean; readonly srtpCryptoSuite?: types.SrtpCryptoSuite }
  ) => Effect.Effect<PlainTransportInfo, ServiceUnavailable>
  /**
   * Holds a place among the session's client transports (or producers) until the scope closes;
   * false when `max` are already made or being made (the caller decides what that means).
   */
  readonly reserve: (sessionId: string, what: "transports" | "producers", max: number) => Effect.Effect<boolean, ServiceUnavailable, Scope.Scope>
  /** Gives a plain transport the sender's SRTP keying (comedia: the address comes from the first packet). */
  readonly connectPlainTransport: (sessionId: string, transportId: TransportId, srtpParameters: types.SrtpParameters) => Op<void>
  /** A data consumer, on the client's WebRTC transport, of the session's server events channel (made on first use). */
  readonly openEventsChannel: (sessionId: string, transportId: TransportId) => Op<EventsChannel>
  /** Sends one text message on the session's events channel (nothing when no client opened it). Synchronous: called from media callbacks. */
  readonly sendEvent: (sessionId: string, text: string) => void
  readonly produce: (sessionId: string, transportId: TransportId, options: types.ProducerOptions) => Op<types.Producer>
  readonly produceData: (sessionId: string, transportId: TransportId, options: types.DataProducerOptions) => Op<types.DataProducer>
  /** For the audio path: consumes `producerId` server-side; closed with the scope or the session. */
  readonly createDirectConsumer: (
    sessionId: string,
    producerId: ProducerId
  ) => Effect.Effect<DirectConsumer, MediaNotFound | MediaRejected | ServiceUnavailable, Scope.Scope>
  readonly createDataConsumer: (
    sessionId: string,
    dataProducerId: DataProducerId
  ) => Effect.Effect<DirectDataConsumer, MediaNotFound | MediaRejected | ServiceUnavailable, Scope.Scope>
  /** The session's producers (existing ones first, then new ones); ends when the session's media closes. */
  readonly onProducer: (sessionId: string) => Stream.Stream<ProducerAdded>
  /** Media opened and workers died, from now on (subscribed once this succeeds; ends when the server stops). */
  readonly facts: Effect.Effect<Stream.Stream<MediaFact>, never, Scope.Scope>
  /** The session's client transports (WebRTC and plain) on this instance. */
  readonly clientTransports: (sessionId: string) => Effect.Effect<number>
  /** Closes everything the session owns (idempotent). */
  readonly closeSession: (sessionId: string) => Effect.Effect<void>
  readonly router: (sessionId: string) => Effect.Effect<Option.Option<types.Router>>
  readonly workers: Effect.Effect<ReadonlyArray<types.Worker>>
  readonly status: Effect.Effect<
    { workers: ReadonlyArray<WorkerStatus>; sessions: ReadonlyArray<{ id: string; worker: number; transports: number; producers: number; consumers: number }> }
  >
}>()("auralink/MediaServer") {
  static readonly layer = Layer.effect(
    MediaServer,
    Effect.gen(function*() {
      const { limits, media: config } = yield* AppConfig
      const { registry } = yield* Metrics
      const fibers = yield* FiberSet.make()
      const facts = yield* Effect.acquireRelease(PubSub.unbounded<MediaFact>(), PubSub.shutdown)
      const runFork = yield* FiberSet.runtime(fibers)<never>()
      const workerBin = useBundledMediaWorker()
      const mediasoup = yield* Effect.promise(() => import("mediasoup"))

      const sessions = new Map<string, SessionMedia>()
      const slots = splitPorts(config.rtcMinPort, config.rtcMaxPort, config.workers).map((ports, index): WorkerSlot => ({
        index,
        ports,
        worker: undefined,
        server: undefined
      }))
      const lock = yield* Semaphore.make(1)
      // In port-range mode each client transport binds a port of its worker's slice: a slice smaller than what
      // one user may hold (open sessions x transports) lets one user starve a worker (new transports then get 503).
      const share = Math.min(...slots.map((s) => s.ports.max - s.ports.min + 1))
      const oneUser = limits.maxOpenSessionsPerUser * limits.maxTransportsPerSession
      if (!config.webRtcServer && share < oneUser) {
        yield* Effect.logWarning(
          `RTC port range is small for ${slots.length} media worker(s): ${share} ports per worker, fewer than one user may hold (${oneUser}); widen RTC_MIN_PORT..RTC_MAX_PORT or lower MEDIASOUP_WORKERS`
        ).pipe(
          Effect.annotateLogs({ event: "rtc_port_range_small", portsPerWorker: share, workers: slots.length, perUser: oneUser })
        )
      }
      let stopping = false
      const health = makeWorkerHealth({
        timeoutMs: config.workerTimeoutMs,
        onChange: (index, stalled) =>
          runFork(
            stalled === undefined
              ? Effect.logInfo("mediasoup worker answers again").pipe(Effect.annotateLogs({ event: "media_worker_recovered", worker: index }))
              : Effect.logError("mediasoup worker stalled: new sessions avoid it, its requests get 503").pipe(
                Effect.annotateLogs({ event: "media_worker_stalled", worker: index, pid: slots[index]?.worker?.pid, reason: stalled.reason })
              )
          )
      })
      /** A request to the worker of slot `index`, bounded by MEDIASOUP_WORKER_TIMEOUT_MS. */
      const onWorker = health.call

      const restarts = new Counter({
        name: "auralink_media_worker_restarts_total",
        help: "mediasoup workers that died and were replaced",
        registers: [registry]
      })
      const portsExhausted = new Counter({
        name: "auralink_media_ports_exhausted_total",
        help: "Transports refused (503) because the worker had no free RTC port",
        registers: [registry]
      })
      const onPortsExhausted = () => portsExhausted.inc()
      const count = (pick: (m: SessionMedia) => Iterable<string>) => {
        const by: Record<string, number> = {}
        for (const media of sessions.values()) for (const k of pick(media)) by[k] = (by[k] ?? 0) + 1
        return by
      }
      const gauge = (name: string, help: string, kinds: ReadonlyArray<string>, pick: (m: SessionMedia) => Iterable<string>) =>
        new Gauge({
          name,
          help,
          labelNames: ["kind"] as const,
          registers: [registry],
          collect() {
            const by = count(pick)
            for (const kind of kinds) this.set({ kind }, by[kind] ?? 0)
          }
        })
      gauge(
        "auralink_media_transports",
        "Open mediasoup transports by kind",
        ["webrtc", "plain", "direct"],
        (m) => [...m.transports.values()].map((t) => t.kind)
      )
      gauge("auralink_media_producers", "Open producers by kind (data: data producers)", ["audio", "video", "data"], (m) => [
        ...[...m.producers.values()].map((p) => p.producer.kind),
        ...[...m.dataProducers.keys()].map(() => "data")
      ])
      gauge("auralink_media_consumers", "Open consumers by kind (data: data consumers)", ["audio", "video", "data"], (m) => [
        ...[...m.consumers.values()].map((c) => c.kind),
        ...[...m.dataConsumers.keys()].map(() => "data")
      ])

      /** The sessions whose router is on the worker of slot `index`. */
      const carriedBy = (index: number) => [...sessions.values()].filter((m) => m.workerIndex === index)

      const forget = (id: string) => {
        const media = sessions.get(id)
        if (media === undefined) return
        sessions.delete(id)
        media.close()
      }

      const startWorker = (slot: (typeof slots)[number]): Effect.Effect<types.Worker> =>
        Effect.gen(function*() {
          const worker = yield* Effect.promise(() =>
            withoutSignalClose(() => mediasoup.createWorker({ workerBin, logLevel: config.logLevel, logTags: config.logTags.filter(isWorkerLogTag) }))
          )
          worker.on("died", (error: Error) => {
            if (!stopping) runFork(onDied(slot, worker, error))
          })
          // A port taken by another program is a start-up failure naming it, not a defect later.
          slot.server = config.webRtcServer ? yield* startServer(worker, slot) : undefined
          slot.worker = worker
          return worker
        })

      /** The worker's WebRtcServer (its UDP and TCP port, read back: RTC_PORT=0 picks free ones). */
      const startServer = (worker: types.Worker, slot: WorkerSlot) =>
        Effect.tryPromise(async () => {
          const server = await worker.createWebRtcServer(webRtcServerOptions(config, slot.index, slot.ports))
          const dump = await server.dump()
          return { server, udp: dump.udpSockets[0]?.port ?? 0, tcp: dump.tcpServers[0]?.port ?? 0 }
        }).pipe(
          Effect.tapError(() => Effect.sync(() => worker.close())),
          Effect.mapError((e) => new Error(`media worker ${slot.index}: WebRtcServer on ${config.listenIp} failed: ${errorMessage(e.cause)}`)),
          Effect.orDie
        )

      // A dead worker took its routers with it: count it, replace it, and tell which sessions it carried.
      const onDied = (slot: (typeof slots)[number], worker: types.Worker, error: Error) =>
        Effect.gen(function*() {
          const lost = carriedBy(slot.index).map((m) => m.id)
          restarts.inc()
          yield* Effect.logError("mediasoup worker died; replacing it").pipe(
            Effect.annotateLogs({ event: "media_worker_died", pid: worker.pid, worker: slot.index, error: error.message, sessions: lost })
          )
          for (const id of lost) forget(id)
          const replacement = yield* Semaphore.withPermit(lock, startWorker(slot))
          health.reset(slot.index)
          yield* Effect.logInfo("mediasoup worker replaced").pipe(Effect.annotateLogs({ worker: slot.index, pid: replacement.pid }))
          yield* PubSub.publish(facts, { _tag: "WorkerDied", worker: slot.index, pid: worker.pid, error: error.message, sessions: lost })
        })

      yield* Effect.acquireRelease(
        Effect.forEach(slots, startWorker, { discard: true }),
        () =>
          Effect.sync(() => {
            stopping = true
            for (const id of [...sessions.keys()]) forget(id)
            for (const slot of slots) slot.worker?.close()
          })
      )

      // One throwaway router tells what every router will offer (mediasoup assigns payload types and extension ids).
      const firstWorker = slots[0]?.worker
      if (firstWorker === undefined) return yield* Effect.die(new Error("no media worker started"))
      const routerCapabilities = yield* Effect.promise(async () => {
        const router = await firstWorker.createRouter({ mediaCodecs: routerCodecs() })
        const caps = router.rtpCapabilities
        router.close()
        return caps
      })

      runFork(
        Effect.forEach(slots, (slot) => slot.worker === undefined ? Effect.void : health.probe(slot.index, slot.worker), {
          concurrency: "unbounded",
          discard: true
        }).pipe(
          Effect.repeat(Schedule.spaced(Duration.millis(config.workerProbeIntervalMs)))
        )
      )
      yield* (yield* Health).register({
        name: "media_workers",
        // One stalled worker does not take the instance out: new sessions go to the others.
        critical: false,
        check: Effect.suspend(() => {
          const stalled = health.stalled()
          return stalled.length === 0
            ? Effect.void
            : Effect.fail(stalled.map((w) => `worker ${w.index} (pid ${slots[w.index]?.worker?.pid ?? 0}) stalled: ${w.reason}`).join("; "))
        })
      })

      // Routers being made, by session: a second request for the same session waits for the first.
      const creating = new Map<string, { readonly worker: number; readonly done: Deferred.Deferred<SessionMedia, ServiceUnavailable> }>()
      const load = (index: number) => carriedBy(index).length + [...creating.values()].filter((c) => c.worker === index).length

      /** The session's router, made on the least-loaded worker that answers (no lock held while a worker works). */
      const ensure = (id: string): Effect.Effect<SessionMedia, ServiceUnavailable> =>
        Effect.suspend(() => {
          const existing = sessions.get(id)
          if (existing !== undefined) return Effect.succeed(existing)
          const pending = creating.get(id)
          if (pending !== undefined) return Deferred.await(pending.done)
          const healthy = slots.filter((s) => s.worker !== undefined && !health.isStalled(s.index))
          const slot = healthy.reduce<WorkerSlot | undefined>((best, s) => best === undefined || load(s.index) < load(best.index) ? s : best, undefined)
          const worker = slot?.worker
          if (slot === undefined || worker === undefined) return Effect.fail(serviceUnavailable("No media worker is answering; retry shortly"))
          const done = Deferred.makeUnsafe<SessionMedia, ServiceUnavailable>()
          creating.set(id, { worker: slot.index, done })
          // Made on its own fiber: a caller that goes away does not leave the others waiting.
          runFork(
            onWorker(slot.index, () => worker.createRouter({ mediaCodecs: routerCodecs() }), defect, closeLate).pipe(
              Effect.map((router) => {
                const media = new SessionMedia(id, router, slot.index)
                sessions.set(id, media)
                // No forget on router close: a dying worker closes its routers before it reports "died",
                // and onDied needs to find their sessions here.
                PubSub.publishUnsafe(facts, { _tag: "MediaOpened", sessionId: id, worker: slot.index })
                return media
              }),
              Effect.onExit((exit) => Effect.andThen(Effect.sync(() => creating.delete(id)), Deferred.done(done, exit)))
            )
          )
          return Deferred.await(done)
        })

      const find = (id: string): Lookup<SessionMedia> =>
        Effect.suspend(() => {
          const media = sessions.get(id)
          return media === undefined ? Effect.fail(mediaNotFound("media for session", id)) : Effect.succeed(media)
        })
      const transportOf = (id: string, transportId: TransportId): Lookup<{ media: SessionMedia; entry: TransportEntry }> =>
        Effect.flatMap(find(id), (media) => {
          const entry = media.transports.get(transportId)
          return entry === undefined ? Effect.fail(mediaNotFound("transport", transportId)) : Effect.succeed({ media, entry })
        })
      const webRtcOf = (id: string, transportId: TransportId) =>
        Effect.flatMap(transportOf(id, transportId), ({ media, entry }) =>
          entry.kind === "webrtc"
            ? Effect.succeed({ worker: media.workerIndex, transport: entry.transport })
            : Effect.fail(mediaNotFound("WebRTC transport", transportId)))
      const plainOf = (id: string, transportId: TransportId) =>
        Effect.flatMap(transportOf(id, transportId), ({ media, entry }) =>
          entry.kind === "plain"
            ? Effect.succeed({ worker: media.workerIndex, transport: entry.transport })
            : Effect.fail(mediaNotFound("plain transport", transportId)))

      // One lock per session (not the global one): a stalled worker must not hold up other sessions.
      const eventsLocks = new WeakMap<SessionMedia, Semaphore.Semaphore>()
      /** The session's server data producer (on a DirectTransport of its router), made once. */
      const eventsProducer = (media: SessionMedia): Op<types.DataProducer> =>
        Effect.suspend(() => {
          const sessionLock = eventsLocks.get(media) ?? Semaphore.makeUnsafe(1)
          eventsLocks.set(media, sessionLock)
          return Semaphore.withPermit(
            sessionLock,
            Effect.gen(function*() {
              if (media.events !== undefined && !media.events.closed) return media.events
              const transport = yield* onWorker(media.workerIndex, () => media.router.createDirectTransport(), rejected, closeLate)
              media.addTransport({ kind: "direct", transport })
              const producer = yield* onWorker(
                media.workerIndex,
                () => transport.produceData({ label: EVENTS_CHANNEL_LABEL, protocol: EVENTS_CHANNEL_PROTOCOL }),
                rejected,
                closeLate
              )
              media.events = producer
              return producer
            })
          )
        })

      const iceServers: ReadonlyArray<IceServer> = [
        ...(config.stunUrls.length > 0 ? [{ urls: config.stunUrls }] : []),
        ...(config.turnUrls.length > 0
          ? [{
            urls: config.turnUrls,
            ...Option.match(config.turnUsername, { onNone: () => ({}), onSome: (username) => ({ username }) }),
            ...Option.match(config.turnCredential, { onNone: () => ({}), onSome: (c) => ({ credential: Redacted.value(c) }) })
          }]
          : [])
      ]

      /** ICE lost on a client's transport is a fact for the media lifecycle (a later reconnect by ICE restart is not: the transport is gone by then). */
      const watchIce = (id: string, transport: types.WebRtcTransport) =>
        transport.on("icestatechange", (state) => {
          if (state === "disconnected") PubSub.publishUnsafe(facts, { _tag: "IceLost", sessionId: id, transportId: TransportId.make(transport.id) })
        })

      /** A client's WebRTC transport on the session's router (or a viewer's), watched for ICE and DTLS loss. */
      const openWebRtc = (id: string, viewer: boolean, on?: types.Router) =>
        Effect.gen(function*() {
          const media = yield* ensure(id)
          const slot = slots[media.workerIndex]!
          const router = on ?? media.router
          const transport = yield* onWorker(
            media.workerIndex,
            () => router.createWebRtcTransport(webRtcTransportOptions(config, slot.server?.server, slot.ports)),
            portsOrDefect(onPortsExhausted),
            closeLate
          )
          media.addTransport({ kind: "webrtc", transport, viewer })
          watchIce(id, transport)
          watchDtls(id, transport)
          return transport
        })

      /** A failed or closed DTLS association is a fact for the media lifecycle, as a lost ICE is. */
      const watchDtls = (id: string, transport: types.WebRtcTransport) =>
        transport.on("dtlsstatechange", (state) => {
          if (state === "failed" || state === "closed") {
            PubSub.publishUnsafe(facts, { _tag: "DtlsEnded", sessionId: id, transportId: TransportId.make(transport.id), state })
          }
        })

      const endpointOf = (transport: types.WebRtcTransport): WebRtcEndpoint => ({
        id: TransportId.make(transport.id),
        iceParameters: transport.iceParameters,
        iceCandidates: transport.iceCandidates,
        dtlsParameters: transport.dtlsParameters
      })

      const directTransport = (media: SessionMedia) =>
        Effect.acquireRelease(
          onWorker(media.workerIndex, () => media.router.createDirectTransport(), defect, closeLate).pipe(
            Effect.tap((transport) => Effect.sync(() => media.addTransport({ kind: "direct", transport })))
          ),
          (transport) => Effect.sync(() => transport.close())
        )

      const status = Effect.sync(() => ({
        workers: slots.map((s) => ({
          index: s.index,
          pid: s.worker?.pid ?? 0,
          routers: carriedBy(s.index).length,
          ...(s.server === undefined ? {} : { webRtcServer: { udp: s.server.udp, tcp: s.server.tcp } }),
          stalled: health.isStalled(s.index)
        })),
        sessions: [...sessions.values()].map((m) => ({
          id: m.id,
          worker: m.workerIndex,
          transports: m.transports.size,
          producers: m.producers.size + m.dataProducers.size,
          consumers: m.consumers.size + m.dataConsumers.size
        }))
      }))
      yield* (yield* Health).section("media", status)

      return MediaServer.of({
        rtpCapabilities: (id) => Effect.map(ensure(id), (m) => m.router.rtpCapabilities),
        routerCapabilities,
        createWebRtcTransport: (id) =>
          Effect.map(openWebRtc(id, false), (transport) => ({
            id: transport.id,
            iceParameters: plainJson(transport.iceParameters),
            iceCandidates: transport.iceCandidates.map(plainJson),
            dtlsParameters: plainJson(transport.dtlsParameters),
            ...(transport.sctpParameters === undefined ? {} : { sctpParameters: plainJson(transport.sctpParameters) }),
            iceServers
          })),
        createWebRtcEndpoint: (id) => Effect.map(openWebRtc(id, false), endpointOf),
        createViewerEndpoint: (id, codecs, producers) =>
          Effect.gen(function*() {
            const media = yield* find(id)
            const worker = slots[media.workerIndex]?.worker
            if (worker === undefined) return yield* Effect.fail(serviceUnavailable("No media worker is answering; retry shortly"))
            const router = yield* onWorker(media.workerIndex, () => worker.createRouter({ mediaCodecs: [...codecs] }), rejected, closeLate)
            media.addViewerRouter(router)
            return yield* Effect.gen(function*() {
              const piped = new Map<ProducerId, ProducerId>()
              for (const producerId of producers) {
                // Same worker: the piped producer gets a new id (keepId would throw).
                const { pipeProducer } = yield* onWorker(media.workerIndex, () => media.router.pipeToRouter({ producerId, router, keepId: false }), rejected)
                if (pipeProducer === undefined) continue
                media.addPipedProducer(pipeProducer)
                piped.set(producerId, ProducerId.make(pipeProducer.id))
              }
              const transport = yield* openWebRtc(id, true, router)
              transport.observer.on("close", () => router.close())
              return { endpoint: endpointOf(transport), piped }
            }).pipe(Effect.onError(() => Effect.sync(() => router.close())))
          }),
        consume: (id, transportId, producerId, rtpCapabilities) =>
          Effect.gen(function*() {
            const { media, entry } = yield* transportOf(id, transportId)
            if (!media.producers.has(producerId) && !media.pipedProducers.has(producerId)) return yield* Effect.fail(mediaNotFound("producer", producerId))
            const consumer = yield* onWorker(media.workerIndex, () => entry.transport.consume({ producerId, rtpCapabilities }), rejected, closeLate)
            media.addConsumer(consumer)
            return consumer
          }),
        producers: (id) =>
          Effect.sync(() =>
            [...(sessions.get(id)?.producers.values() ?? [])].map(({ producer }) => ({
              id: ProducerId.make(producer.id),
              kind: producer.kind,
              codec: producer.rtpParameters.codecs[0]
            }))
          ),
        hasMedia: (id) => sessions.has(id),
        transportOpen: (id, transportId) => sessions.get(id)?.transports.has(TransportId.make(transportId)) ?? false,
        connectTransport: (id, transportId, dtlsParameters) =>
          Effect.flatMap(webRtcOf(id, transportId), (t) => onWorker(t.worker, () => t.transport.connect({ dtlsParameters }), rejected)),
        restartIce: (id, transportId) => Effect.flatMap(webRtcOf(id, transportId), (t) => onWorker(t.worker, () => t.transport.restartIce(), rejected)),
        closeTransport: (id, transportId) => Effect.map(transportOf(id, transportId), ({ entry }) => entry.transport.close()),
        transportStats: (id, transportId) =>
          Effect.gen(function*() {
            const { media, entry } = yield* transportOf(id, transportId)
            const transport = (yield* onWorker(media.workerIndex, () => entry.transport.getStats(), rejected)).map(plainJson)
            const producers = yield* Effect.forEach(
              [...media.producers.values()].filter((p) => p.transportId === transportId),
              ({ producer }) =>
                Effect.map(
                  onWorker(media.workerIndex, () => producer.getStats(), rejected),
                  (stats) => ({ id: producer.id, kind: producer.kind, stats: stats.map(plainJson) })
                )
            )
            return { transport, producers }
          }),
        sessionStats: (id) =>
          Effect.gen(function*() {
            const media = yield* find(id)
            // A read of an object that closed meanwhile rejects: undefined, and the object is left out.
            const read = <A>(run: () => Promise<A>) => onWorker(media.workerIndex, () => run().catch(() => undefined), defect)
            const producers = yield* Effect.forEach([...media.producers.values()], ({ producer, transportId }) =>
              Effect.map(
                read(() => producer.getStats()),
                (stats) => stats === undefined ? [] : [producerStats(producer, transportId, stats)]
              ))
            const transports = yield* Effect.forEach([...media.transports.entries()], ([transportId, entry]) =>
              entry.kind === "direct"
                ? Effect.succeed([])
                : Effect.map(
                  read((): Promise<ReadonlyArray<types.BaseTransportStats>> => entry.transport.getStats()),
                  (stats) => stats === undefined ? [] : [transportStats(transportId, entry.kind, stats)]
                ))
            return { producers: producers.flat(), transports: transports.flat() }
          }),
        createPlainTransport: (id, options) =>
          Effect.gen(function*() {
            const media = yield* ensure(id)
            const transport = yield* onWorker(
              media.workerIndex,
              () =>
                media.router.createPlainTransport({
                  listenInfo: plainListenInfo(config, slots[media.workerIndex]!.ports),
                  rtcpMux: options.rtcpMux ?? true,
                  comedia: true,
                  enableSrtp: options.enableSrtp ?? false,
                  ...(options.srtpCryptoSuite === undefined ? {} : { srtpCryptoSuite: options.srtpCryptoSuite })
                }),
              portsOrDefect(onPortsExhausted),
              closeLate
            )
            media.addTransport({ kind: "plain", transport })
            return {
              id: transport.id,
              ip: Option.getOrElse(config.announcedIp, () => transport.tuple.localAddress),
              port: transport.tuple.localPort,
              ...(transport.rtcpTuple === undefined ? {} : { rtcpPort: transport.rtcpTuple.localPort }),
              ...(transport.srtpParameters === undefined ? {} : { srtpParameters: plainJson(transport.srtpParameters) })
            }
          }),
        reserve: (id, what, max) =>
          Effect.gen(function*() {
            // A producer needs a transport, so a session without media has none to count.
            const media = what === "transports" ? yield* ensure(id) : sessions.get(id)
            if (media === undefined) return true
            if (media.held(what) + media.reserved[what] >= max) return false
            media.reserved[what]++
            yield* Effect.addFinalizer(() => Effect.sync(() => void media.reserved[what]--))
            return true
          }),
        connectPlainTransport: (id, transportId, srtpParameters) =>
          Effect.flatMap(plainOf(id, transportId), (t) => onWorker(t.worker, () => t.transport.connect({ srtpParameters }), rejected)),
        openEventsChannel: (id, transportId) =>
          Effect.gen(function*() {
            const transport = yield* webRtcOf(id, transportId)
            const media = yield* find(id)
            const producer = yield* eventsProducer(media)
            const consumer = yield* onWorker(transport.worker, () => transport.transport.consumeData({ dataProducerId: producer.id }), rejected, closeLate)
            media.addDataConsumer(consumer)
            return {
              id: consumer.id,
              dataProducerId: producer.id,
              sctpStreamParameters: plainJson(consumer.sctpStreamParameters),
              label: consumer.label,
              protocol: consumer.protocol
            }
          }),
        sendEvent: (id, text) => {
          const producer = sessions.get(id)?.events
          if (producer === undefined || producer.closed) return
          try {
            producer.send(text)
          } catch {
            // The channel closed under us (the session is ending): the message is not delivered.
          }
        },
        produce: (id, transportId, options) =>
          Effect.gen(function*() {
            const { media, entry } = yield* transportOf(id, transportId)
            const producer = yield* onWorker(media.workerIndex, () => entry.transport.produce(options), rejected, closeLate)
            media.addProducer(producer, transportId)
            return producer
          }),
        produceData: (id, transportId, options) =>
          Effect.gen(function*() {
            const { media, entry } = yield* transportOf(id, transportId)
            const dataProducer = yield* onWorker(media.workerIndex, () => entry.transport.produceData(options), rejected, closeLate)
            media.addDataProducer(dataProducer, transportId)
            return dataProducer
          }),
        createDirectConsumer: (id, producerId) =>
          Effect.gen(function*() {
            const media = yield* find(id)
            if (!media.producers.has(producerId)) return yield* Effect.fail(mediaNotFound("producer", producerId))
            const transport = yield* directTransport(media)
            const consumer = yield* onWorker(
              media.workerIndex,
              () => transport.consume({ producerId, rtpCapabilities: media.router.rtpCapabilities }),
              rejected,
              closeLate
            )
            media.addConsumer(consumer)
            return { transport, consumer }
          }),
        createDataConsumer: (id, dataProducerId) =>
          Effect.gen(function*() {
            const media = yield* find(id)
            if (!media.dataProducers.has(dataProducerId)) return yield* Effect.fail(mediaNotFound("data producer", dataProducerId))
            const transport = yield* directTransport(media)
            const dataConsumer = yield* onWorker(media.workerIndex, () => transport.consumeData({ dataProducerId }), rejected, closeLate)
            media.addDataConsumer(dataConsumer)
            return { transport, dataConsumer }
          }),
        onProducer: (id) =>
          Stream.callback<ProducerAdded>((queue) =>
            Effect.gen(function*() {
              // No worker answers: no producers can come either, so the stream ends.
              const found = yield* Effect.option(ensure(id))
              if (Option.isNone(found)) return Queue.endUnsafe(queue)
              const media = found.value
              for (const p of media.existing()) Queue.offerUnsafe(queue, p)
              if (sessions.get(id) !== media) return Queue.endUnsafe(queue)
              const listener = { added: (p: ProducerAdded) => void Queue.offerUnsafe(queue, p), ended: () => void Queue.endUnsafe(queue) }
              media.listeners.add(listener)
              yield* Effect.addFinalizer(() => Effect.sync(() => media.listeners.delete(listener)))
            })
          ),
        facts: Effect.map(PubSub.subscribe(facts), Stream.fromSubscription),
        clientTransports: (id) => Effect.sync(() => sessions.get(id)?.held("transports") ?? 0),
        closeSession: (id) => Effect.sync(() => forget(id)),
        router: (id) => Effect.sync(() => Option.fromNullishOr(sessions.get(id)?.router)),
        workers: Effect.sync(() => slots.flatMap((s) => s.worker === undefined ? [] : [s.worker])),
        status
      })
    })
  )
}
