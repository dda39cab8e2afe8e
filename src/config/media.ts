import { Effect, Option } from "effect"
import { availableParallelism } from "node:os"
import { between, countOrZero, key, ms, nonNegative, PORT, rule, secret, within } from "./key.ts"
import { environment } from "./service.ts"

/** Addresses that mean "every interface": not something a client can send media to. */
export const UNSPECIFIED_IPS: ReadonlySet<string> = new Set(["0.0.0.0", "::", "[::]"])

const rtcMinPort = key("RTC_MIN_PORT", "auralink.mediasoup.rtc_min_port").int(10000, rule(PORT, within(1, 65535)))
const rtcMaxPort = Effect.flatMap(
  rtcMinPort,
  (min) => key("RTC_MAX_PORT", "auralink.mediasoup.rtc_max_port").int(10100, rule(`${PORT}, at least RTC_MIN_PORT`, within(min, 65535)))
)
const rtcPortCount = Effect.all([rtcMinPort, rtcMaxPort]).pipe(Effect.map(([min, max]) => max - min + 1))

/** mediasoup worker processes (default: one per core); the RTC port range is split between them. */
const workerCount = Effect.flatMap(rtcPortCount, (ports) =>
  key("MEDIASOUP_WORKERS", "auralink.mediasoup.workers")
    .int(Math.min(availableParallelism(), ports), rule("a whole number >= 1, at most the RTC port count", within(1, ports))))

/**
 * WebRTC transports share one UDP and one TCP port per worker (a mediasoup WebRtcServer on
 * RTC_PORT + worker index): what firewalls, load balancers and Kubernetes want. Off: each
 * transport binds a port of its worker's slice of RTC_MIN_PORT..RTC_MAX_PORT. Plain (RTP)
 * transports always take ports from that range.
 */
const webRtcServer = key("MEDIASOUP_WEBRTC_SERVER", "auralink.mediasoup.webrtc_server").flag(true)
/** 0: each worker's WebRtcServer takes a free port of its slice of the range (tests, several instances on one host). */
const RTC_PORT = key("RTC_PORT", "auralink.mediasoup.rtc_port")
const rtcPort = Effect.gen(function*() {
  const port = yield* RTC_PORT.int(40000, rule(`0 or ${PORT}`, within(0, 65535)))
  const min = yield* rtcMinPort
  const max = yield* rtcMaxPort
  const workers = yield* workerCount
  const last = port + workers - 1
  if (port === 0 || !(yield* webRtcServer)) return port
  if (last > 65535) {
    return yield* RTC_PORT.fail(`a port such that RTC_PORT + MEDIASOUP_WORKERS - 1 <= 65535 (${workers} workers)`)
  }
  if (port <= max && last >= min) {
    return yield* RTC_PORT.fail(
      `ports ${port}-${last} (one per worker) outside RTC_MIN_PORT..RTC_MAX_PORT (${min}-${max}), or 0`
    )
  }
  return port
})

const listenIp = key("MEDIASOUP_LISTEN_IP", "auralink.mediasoup.listen_ip").text("0.0.0.0")
/** An IP or a host name (mediasoup's announcedAddress: clients resolve it). */
const MEDIASOUP_ANNOUNCED_IP = key("MEDIASOUP_ANNOUNCED_IP", "auralink.mediasoup.announced_ip")
/** Development listening on every interface announces 127.0.0.1; production must be told. */
const announcedIp = Effect.gen(function*() {
  const given = yield* MEDIASOUP_ANNOUNCED_IP.optional()
  const listen = yield* listenIp
  const env = yield* environment
  if (Option.isNone(given) && UNSPECIFIED_IPS.has(listen) && env === "production") {
    return yield* MEDIASOUP_ANNOUNCED_IP.fail(
      `the IP or host name clients send media to (required when ENVIRONMENT=production and MEDIASOUP_LISTEN_IP=${listen})`
    )
  }
  return { given, defaulted: Option.isNone(given) && UNSPECIFIED_IPS.has(listen) && env === "development" }
})

/** mediasoup accepts 0 (no consent checks) or 10-60 s (RFC 7675's 30 s by default). */
const iceConsentTimeoutSeconds = key("MEDIASOUP_ICE_CONSENT_TIMEOUT_SECONDS", "auralink.mediasoup.ice_consent_timeout_seconds")
  .int(30, rule("0 (off) or seconds 10-60", (n) => n === 0 || within(10, 60)(n)))

export const media = Effect.all({
  rtcMinPort,
  rtcMaxPort,
  listenIp,
  announcedIp: Effect.map(announcedIp, ({ defaulted, given }) => defaulted ? Option.some("127.0.0.1") : given),
  /** true when ENVIRONMENT=development listens on all interfaces with nothing announced, so 127.0.0.1 is announced. */
  announcedIpDefaulted: Effect.map(announcedIp, ({ defaulted }) => defaulted),
  workers: workerCount,
  webRtcServer,
  rtcPort,
  iceConsentTimeoutSeconds,
  /**
   * A WebRTC transport that lost ICE consent (its client vanished) is closed at once; its session
   * ends (reason consent_lost) when, this long after, it has no connected WebRTC transport left.
   */
  consentGraceMs: key("MEDIA_CONSENT_GRACE_MS", "auralink.mediasoup.consent_grace_ms").int(5000, rule("milliseconds >= 0", nonNegative)),
  logLevel: key("MEDIASOUP_LOG_LEVEL", "auralink.mediasoup.log_level")
    .literal(["debug", "warn", "error", "none"], "warn", "one of debug, warn, error, none"),
  logTags: key("MEDIASOUP_LOG_TAGS", "auralink.mediasoup.log_tags").list(),
  /** Each worker is asked for its resource usage this often; no answer within workerTimeoutMs marks it stalled. */
  workerProbeIntervalMs: key("MEDIASOUP_WORKER_PROBE_INTERVAL_MS", "auralink.mediasoup.worker_probe_interval_ms").int(1000, ms),
  /** Also the longest a request waits on a worker before it answers 503. */
  workerTimeoutMs: key("MEDIASOUP_WORKER_TIMEOUT_MS", "auralink.mediasoup.worker_timeout_ms").int(2000, ms),
  /** Handed to clients as iceServers. */
  stunUrls: key("STUN_URLS", "auralink.mediasoup.stun_urls").list(),
  turnUrls: key("TURN_URLS", "auralink.mediasoup.turn_urls").list(),
  turnUsername: key("TURN_USERNAME", "auralink.mediasoup.turn_username").optional(),
  turnCredential: secret("TURN_CREDENTIAL", "auralink.mediasoup.turn_credential").optional()
})

export const audio = Effect.all({
  /** Restarts of a failed producer pipeline in a row (jittered exponential backoff) before its session goes to `error`. */
  pipelineRestarts: key("AUDIO_PIPELINE_RESTARTS", "auralink.audio.pipeline_restarts").int(5, countOrZero),
  pipelineRestartBaseMs: key("AUDIO_PIPELINE_RESTART_BASE_MS", "auralink.audio.pipeline_restart_base_ms").int(200, ms),
  pipelineRestartMaxMs: key("AUDIO_PIPELINE_RESTART_MAX_MS", "auralink.audio.pipeline_restart_max_ms").int(5000, ms),
  /** Worker threads that decode Opus RTP (0: on the main thread). */
  // 0 by default: on the main thread the server-added p99 is a few ms lower (no thread hop);
  // threads raise the sessions one process carries (bench/audio-ingest, README).
  decodeThreads: key("AUDIO_DECODE_THREADS", "auralink.audio.decode_threads").int(0, between("a whole number", 0, 64)),
  /** Opus RTP: how long a packet after a hole waits for the missing one (0: no reordering, a hole is loss at once). */
  // Waiting costs latency only while a hole is open; in-order packets pass at once.
  jitterBufferMs: key("AUDIO_JITTER_BUFFER_MS", "auralink.audio.jitter_buffer_ms").int(60, between("milliseconds", 0, 1000))
})
