import { performance } from "node:perf_hooks"
import { type BaselineServer, withBaselineServer } from "./audio-baseline-client.ts"
import { browserFigures } from "./audio-browser.ts"
import { RemoteGenerator } from "./audio-generator-client.ts"
import { latencyBuckets, type LatencyBuckets, quantile, windowLatency } from "./audio-latency.ts"
import { carried, describeCpuPerSession, describeLimit, describeStep, referenceN, type Round, type Step, summaryFigures } from "./audio-report.ts"
import { describePair, type Pair, pairRatio, SECOND_MEDIA_ENV, sideBySide } from "./audio-side-by-side.ts"
import { type AudioPathName, pathsToAdd } from "./audio-streams.ts"
import { RemoteFakeAsr } from "./fake-asr-client.ts"
import { accessToken, fmt, measureWindow, processTree, type SentRange, sleep, withService } from "./ingest-rig.ts"
import type { BenchResult } from "./support.ts"

// N concurrent audio sessions, half of them (rounded down) Opus RTP over a comedia plain transport,
// half PCM chunks over a data channel (see audio-streams.ts), opened and streamed by a load
// generator in its own process (audio-generator.ts), against two servers in turn:
// - the service (`node src/main.ts`, its own fresh Postgres database), which decodes/validates and
//   sends 16 kHz chunks to a fake ASR gateway (a real gRPC server, in its own process);
// - the baseline (audio-baseline-server.ts): the same mediasoup workers and the same decoder and
//   chunk parser on the main thread, with nothing else around them: what the service costs above
//   the media work it cannot avoid.
//
// Steps: N grows (sessions are added, the earlier ones keep streaming); per step a warm-up, then a
// measured window. Per step:
// - loss: packets sent in the window vs distinct sequences the receiver (fake ASR; the baseline's
//   own count) holds for them GRACE_MS after the window (a chunk later than that counts as lost);
// - server latency (service only): `auralink_audio_server_latency_seconds` (receipt -> sink
//   hand-off) of both paths, the window's bucket deltas, p50/p99 interpolated within the buckets
//   as histogram_quantile does (also per path in the step line);
// - cpu: the server process plus its mediasoup workers over the window, in % of one core (this
//   machine has 2: 200 % is everything), also per session; rss: their summed RSS at the window's
//   end, its growth over the idle server per session, and in the summary its growth per added
//   session from N/2 to N at the reference N (`*rss_slope_mb`); the generator's CPU beside it.
// Capture -> ASR receipt (e2e) comes from Chromium on the idle service first (audio-browser.ts).
// After the service and the baseline: "baseline+asr" at N=50 and 100 (the bare server forwarding to
// the gateway), the service with the WAV sink stepped (the embedded default, no gateway process),
// then BENCH_AUDIO_ROUNDS more rounds of service, baseline and WAV sink at the reference N. Last,
// side by side (audio-side-by-side.ts): at BENCH_AUDIO_PAIR_N sessions each, the service with the
// baseline, with baseline+asr, and the WAV-sink service with the baseline, each pair at the same moment.

const STEPS = (process.env["BENCH_AUDIO_STEPS"] ?? "10,25,50,75,100,150,200,250,300,400,500").split(",").map(Number)
const WARMUP_MS = 1_000
/**
 * After the warm-up, the service's steps wait (up to SETTLE_MAX_MS) until its server latency has
 * settled: p99 at most SETTLED_P99_MS over a SETTLE_PROBE_MS probe. Sessions added at once start
 * with a burst (their ASR streams connect and catch up under HTTP/2 flow control, chunks waiting up
 * to ~1.4 s at +100 sessions), which a 1 s warm-up put into the window; the time it took is reported.
 */
const SETTLED_P99_MS = 20
const SETTLE_PROBE_MS = 500
const SETTLE_MAX_MS = 15_000
const WINDOW_MS = Number(process.env["BENCH_SECONDS"] ?? 5) * 1000
const GRACE_MS = 300
/** The service's steps start only within this time from the start (opening 100+ DTLS sessions takes a few seconds). */
const SERVICE_BUDGET_MS = 150_000
/** The baseline's, from its own start. */
const BASELINE_BUDGET_MS = 110_000
/** The stepped phase of the service with the WAV sink, from its own start. */
const WAV_BUDGET_MS = 150_000
/** The "baseline + ASR" phase runs only where the ratio is read (about 40 s). */
const ASR_BASELINE_STEPS = STEPS.filter((n) => n === 50 || n === 100)
const ASR_BASELINE_BUDGET_MS = 60_000
/** Each server's later rounds at the reference N (about 30 s each). */
const ROUND_BUDGET_MS = 60_000
/**
 * Rounds at the reference N after the stepped phases, each the service, the baseline and the
 * service with the WAV sink in turn (default 1): on a shared machine single rounds' ratios spread
 * by +-0.1, so the per-session figures are means over every round.
 */
const EXTRA_ROUNDS = Math.max(1, Number(process.env["BENCH_AUDIO_ROUNDS"] ?? 1))
/**
 * Sessions on each server in the side-by-side phase (0: none): a baseline and the service under
 * load at the same moment, CPU over the same windows (see audio-side-by-side.ts). 50: two servers,
 * two generators and the gateway then take about three quarters of this 2-core machine.
 */
const PAIR_N = Number(process.env["BENCH_AUDIO_PAIR_N"] ?? 50)
const PAIR_WINDOWS = 6

/** A server under load: where the generator sends, what it received of a window, how it is measured. */
interface Target<A> {
  readonly name: string
  readonly base: string
  readonly pid: number
  /** The server's RSS (process tree) at idle, before any session. */
  readonly idleRssBytes: number
  readonly auth: Record<string, string>
  /** Of `ranges` (one path's), what the receiver got; `window`: the probes at the window's ends. */
  readonly received: (ranges: ReadonlyArray<SentRange>, window: { readonly before: A; readonly after: A }) => Promise<number>
  /** Read at both ends of a window. */
  readonly probe: () => Promise<A>
  readonly latency: (before: A, after: A) => Step["latency"]
  /** The fake ASR gateway's process, when the server writes to it: its CPU is reported beside the server's. */
  readonly gatewayPid?: number
  /** Whether the server has settled between two probes (none: no latency to settle; the warm-up alone). */
  readonly settled?: (before: A, after: A) => boolean
}

/** Probes `target` until it has settled or SETTLE_MAX_MS passed; the time taken (ms), NaN if it did not settle. */
const settle = async <A>(target: Target<A>): Promise<number> => {
  const settled = target.settled
  if (settled === undefined) return 0
  const started = performance.now()
  let before = await target.probe()
  while (performance.now() - started < SETTLE_MAX_MS) {
    await sleep(SETTLE_PROBE_MS)
    const after = await target.probe()
    if (settled(before, after)) return performance.now() - started
    before = after
  }
  return Number.NaN
}

/** What the target did not receive of `ranges`. */
const lossOf = async <A>(target: Target<A>, ranges: ReadonlyArray<SentRange>, window: { readonly before: A; readonly after: A }) => {
  const sent = ranges.reduce((n, r) => n + r.to - r.from, 0)
  const lost = sent - (await target.received(ranges, window))
  return { lost, pct: sent === 0 ? Number.NaN : (100 * lost) / sent }
}

/**
 * What the service took of one path's `ranges` in the window by its own counters, read at the
 * window's ends: accepted (`auralink_audio_chunks_total`) less dropped before the sink
 * (`auralink_audio_chunks_dropped_total`). The received count where no gateway counts sequences
 * (the WAV sink); packets in flight at the window's edges make it inexact by a few.
 */
const acceptedIn = (ranges: ReadonlyArray<SentRange>, { before, after }: { readonly before: LatencyBuckets; readonly after: LatencyBuckets }) => {
  const path = ranges[0]?.path
  const sent = ranges.reduce((n, r) => n + r.to - r.from, 0)
  const taken = (c: LatencyBuckets["counts"]) => path === "rtp" ? c.rtp - c.droppedRtp : c.datachannel - c.droppedDatachannel
  return Promise.resolve(path === undefined ? 0 : Math.min(sent, taken(after.counts) - taken(before.counts)))
}

/**
 * Steps N up (until the list, the deadline or a step not carried, see `carried`, ends it) with a
 * load generator of its own, which is closed and stopped after: a phase does not inherit what the
 * last one left in the generator (its werift peers' buffers grew to an out-of-memory end when one process served both).
 */
const runSteps = async <A>(target: Target<A>, deadline: number, ns: ReadonlyArray<number>): Promise<Array<Step>> => {
  const generator = await RemoteGenerator.start()
  console.log(`${target.name}: generator captured ${generator.captured} Opus RTP packets from ffmpeg`)
  const paths: Array<AudioPathName> = []
  const steps: Array<Step> = []
  try {
    for (const n of ns) {
      if (performance.now() > deadline) {
        console.log(`${target.name}: time budget reached before N=${n}`)
        break
      }
      const added = pathsToAdd(paths, n)
      // A server that cannot open more sessions under this load has reached its limit: a result, not a crash.
      const opened = await generator.open(target.base, target.auth, added).then(() => true, (error: unknown) => {
        console.log(`${target.name} N=${n}: opening sessions failed under load (${String(error)}); stepping ends`)
        return false
      })
      if (!opened) break
      paths.push(...added)
      await sleep(WARMUP_MS)
      const settleMs = await settle(target)
      const w = await measureWindow(target.pid, generator, { windowMs: WINDOW_MS, graceMs: GRACE_MS }, target.probe, target.gatewayPid)
      const rtp = await lossOf(target, w.ranges.filter((r) => r.path === "rtp"), w)
      const pcm = await lossOf(target, w.ranges.filter((r) => r.path === "pcm"), w)
      const lost = rtp.lost + pcm.lost
      const step: Step = {
        n,
        pcmSessions: paths.filter((p) => p === "pcm").length,
        sent: w.sent,
        lost,
        lossPct: w.sent === 0 ? 100 : (100 * lost) / w.sent,
        rtpLossPct: rtp.pct,
        pcmLossPct: pcm.pct,
        cpuPct: w.cpuPct,
        mainCpuPct: w.mainCpuPct,
        rssMb: w.rssMb,
        rssPerSessionMb: (w.rssMb - target.idleRssBytes / 1024 / 1024) / n,
        generatorCpuPct: w.loadCpuPct,
        gatewayCpuPct: w.sideCpuPct,
        sendLateP99: w.sendLateP99,
        latency: target.latency(w.before, w.after),
        settleMs
      }
      console.log(describeStep(target.name, step))
      steps.push(step)
      if (!carried(step)) break
    }
  } finally {
    await generator.close().catch((error: unknown) => console.log(`${target.name}: closing the generator's streams failed: ${String(error)}`))
    generator.stop()
  }
  return steps
}

export const run = async (): Promise<BenchResult> => {
  const began = performance.now()
  const fake = await RemoteFakeAsr.start()
  try {
    /** The bench user's authorization on the service at `base`. */
    const serviceAuth = async (base: string) => ({ authorization: `Bearer ${await accessToken(base, "bench-rtp")}` })
    /** The service as a target; `sink` "wav": with the embedded default sink, where no gateway counts what arrived. */
    const serviceTarget = async (name: string, base: string, pid: number, sink: "asr" | "wav" = "asr"): Promise<Target<LatencyBuckets>> => ({
      name,
      base,
      pid,
      idleRssBytes: processTree(pid).rssBytes,
      auth: await serviceAuth(base),
      probe: () => latencyBuckets(base),
      latency: windowLatency,
      settled: (before, after) => !(quantile(before.all, after.all, 0.99) > SETTLED_P99_MS),
      ...(sink === "asr" ? { received: (ranges) => fake.count(ranges), gatewayPid: fake.pid } : { received: acceptedIn })
    })
    const { service, e2e } = await withService(fake.url, async ({ base, pid }) => {
      const target = await serviceTarget("service", base, pid)
      const e2e = await browserFigures(base, fake)
      return { service: await runSteps(target, began + SERVICE_BUDGET_MS, STEPS), e2e }
    })
    const bare = (name: string, deadline: number, steps: ReadonlyArray<number>, gatewayPid?: number) => ({ base, pid, count }: BaselineServer) =>
      runSteps(
        {
          name,
          base,
          pid,
          idleRssBytes: processTree(pid).rssBytes,
          auth: {},
          received: count,
          ...(gatewayPid === undefined ? {} : { gatewayPid }),
          probe: () => Promise.resolve(undefined),
          latency: () => undefined
        },
        deadline,
        steps
      )
    const baseline = await withBaselineServer(bare("baseline", performance.now() + BASELINE_BUDGET_MS, STEPS))
    // The least a service that forwards to the gateway must add: bare + one grpc-js stream per producer.
    const withAsr = await withBaselineServer(bare("baseline+asr", performance.now() + ASR_BASELINE_BUDGET_MS, ASR_BASELINE_STEPS, fake.pid), fake.url)
    // The service with the embedded default sink (WAV recordings), stepped like the first phase: the
    // setup the first figures were taken with, and no gateway process on the machine.
    const wav = await withService(
      undefined,
      async ({ base, pid }) => runSteps(await serviceTarget("service, WAV sink", base, pid, "wav"), performance.now() + WAV_BUDGET_MS, STEPS)
    )
    // More rounds at the reference N, minutes after the first: on a shared machine the load drifts
    // between phases, so the per-session figures are means over all rounds (the WAV sink's too).
    const refN = referenceN(wav, baseline)
    const rounds: Array<Round> = []
    for (let r = 2; refN !== undefined && r <= EXTRA_ROUNDS + 1; r++) {
      const round = (name: string) => `${name} (round ${r})`
      rounds.push({
        service: await withService(
          fake.url,
          async ({ base, pid }) => runSteps(await serviceTarget(round("service"), base, pid), performance.now() + ROUND_BUDGET_MS, [refN])
        ),
        baseline: await withBaselineServer(bare(round("baseline"), performance.now() + ROUND_BUDGET_MS, [refN])),
        wav: await withService(
          undefined,
          async ({ base, pid }) => runSteps(await serviceTarget(round("service, WAV sink"), base, pid, "wav"), performance.now() + ROUND_BUDGET_MS, [refN])
        )
      })
    }

    // Side by side: each baseline with the service it is the floor of, at the same moment.
    const pairWith = (name: string, asrUrl: string | undefined, baselineName: string, baselineAsr: string | undefined) =>
      withBaselineServer(
        (b) =>
          withService(asrUrl, async (s) =>
            sideBySide(
              { name: baselineName, base: b.base, pid: b.pid, auth: {} },
              { name, base: s.base, pid: s.pid, auth: await serviceAuth(s.base) },
              PAIR_N,
              PAIR_WINDOWS,
              WINDOW_MS
            ), SECOND_MEDIA_ENV),
        baselineAsr
      )
    /** Each pair with its summary field. */
    const pairs: Array<{ readonly field: string; readonly pair: Pair }> = []
    if (PAIR_N > 0) {
      pairs.push({ field: "pair_ratio", pair: await pairWith("service, WAV sink", undefined, "baseline", undefined) })
      pairs.push({ field: "pair_gateway_ratio", pair: await pairWith("service", fake.url, "baseline", undefined) })
      pairs.push({ field: "pair_asr_ratio", pair: await pairWith("service", fake.url, "baseline+asr", fake.url) })
    }

    const at10 = service.find((s) => s.n === 10)
    if (at10 !== undefined) console.log(`at N=10: ${describeStep("service", at10)}`)
    console.log(describeLimit("service", service))
    console.log(describeLimit("baseline", baseline))
    console.log(describeLimit("service, WAV sink", wav))
    for (const line of describeCpuPerSession(service, baseline, withAsr)) console.log(line)
    for (const line of describeCpuPerSession(wav, baseline, [])) console.log(`WAV sink: ${line}`)
    rounds.forEach((round, i) => {
      for (const line of describeCpuPerSession(round.service, round.baseline, [])) console.log(`round ${i + 2}: ${line}`)
      for (const line of describeCpuPerSession(round.wav, round.baseline, [])) console.log(`round ${i + 2}, WAV sink: ${line}`)
    })
    for (const { pair } of pairs) console.log(describePair(pair))
    const e2eP95 = e2e.length === 0 ? Number.NaN : Math.max(...e2e.map((r) => r.p95))
    const sideBySideFigures = pairs.length === 0 ? [] : [`pair_n=${PAIR_N}`, ...pairs.map(({ field, pair }) => `${field}=${fmt(pairRatio(pair))}`)]
    return { summary: `audio-ingest ${[...summaryFigures({ service, baseline, withAsr, wav, rounds }, e2eP95), ...sideBySideFigures].join(" ")}` }
  } finally {
    fake.stop()
  }
}
