// What bench/audio-ingest prints: one line per step of each server, the per-session CPU of both
// side by side, and the summary figures.
import { availableParallelism } from "node:os"
import { ms, type WindowLatency } from "./audio-latency.ts"
import { fmt } from "./ingest-rig.ts"

export const MAX_LOSS_PCT = 1
export const MAX_P99_MS = 20
/** The step the per-session figures are quoted at, when both servers carried it. */
const REFERENCE_N = 100

export interface Step {
  readonly n: number
  readonly pcmSessions: number
  readonly sent: number
  readonly lost: number
  readonly lossPct: number
  readonly rtpLossPct: number
  readonly pcmLossPct: number
  /** The server's process and its mediasoup workers, % of one core (this machine has 2: 200 % is everything). */
  readonly cpuPct: number
  readonly mainCpuPct: number
  readonly rssMb: number
  /** (RSS now - RSS at idle before any session) / n. */
  readonly rssPerSessionMb: number
  readonly generatorCpuPct: number
  /** The fake ASR gateway's process, % of one core (none: the server does not write to it). */
  readonly gatewayCpuPct: number | undefined
  readonly sendLateP99: number
  /** The service's server latency; the baseline has no histogram. */
  readonly latency: WindowLatency | undefined
  /** How long after the warm-up the server latency took to settle before the window (ms; NaN: it did not within the limit). */
  readonly settleMs: number
}

const cpuPerSession = (s: Step): number => s.cpuPct / s.n
/**
 * Whether a step carried its sessions: under MAX_LOSS_PCT loss and, where the server reports its
 * latency, server-added p99 under MAX_P99_MS (the issue's bar for the maximum).
 */
export const carried = (s: Step): boolean => s.lossPct < MAX_LOSS_PCT && !(s.latency !== undefined && s.latency.p99 >= MAX_P99_MS)
const sustained = (steps: ReadonlyArray<Step>) => steps.filter(carried)

export const describeStep = (server: string, s: Step): string => {
  const sessions = `${server} N=${String(s.n).padStart(3)} (${s.n - s.pcmSessions} rtp, ${s.pcmSessions} pcm)`
  const loss = `loss ${s.lossPct.toFixed(2)} % (${s.lost}/${s.sent} packets+chunks; rtp ${fmt(s.rtpLossPct)} %, pcm ${fmt(s.pcmLossPct)} %)`
  const latency = s.latency === undefined
    ? []
    : [
      `server latency p50 ${ms(s.latency.p50)} ms p99 ${ms(s.latency.p99)} ms (rtp p99 ${ms(s.latency.rtpP99)}, pcm p99 ${ms(s.latency.pcmP99)}; ${
        Number.isNaN(s.settleMs) ? "not settled" : `settled ${(s.settleMs / 1000).toFixed(1)} s`
      } after the warm-up)`,
      // Sent but not accepted: lost before the service (generator, network, mediasoup); dropped: by the service.
      `service accepted rtp ${s.latency.accepted.rtp} pcm ${s.latency.accepted.pcm}, dropped ${s.latency.dropped} (pipeline ${s.latency.droppedByPipeline}, ASR stream ${
        s.latency.dropped - s.latency.droppedByPipeline
      })`
    ]
  return [
    `${sessions}: ${loss}`,
    ...latency,
    `server+workers cpu ${s.cpuPct.toFixed(0)} % (node ${s.mainCpuPct.toFixed(0)} %, ${cpuPerSession(s).toFixed(3)} %/session)`,
    `rss ${s.rssMb.toFixed(0)} MB (+${s.rssPerSessionMb.toFixed(2)} MB/session)`,
    `generator cpu ${s.generatorCpuPct.toFixed(0)} %, sender tick late p99 ${s.sendLateP99.toFixed(1)} ms`,
    ...(s.gatewayCpuPct === undefined ? [] : [`fake ASR gateway cpu ${s.gatewayCpuPct.toFixed(0)} %`]),
    // Everything the step ran, against what the machine has: the load generator shares its cores.
    `together ${(s.cpuPct + s.generatorCpuPct + (s.gatewayCpuPct ?? 0)).toFixed(0)} % of ${availableParallelism() * 100} %`
  ].join(", ")
}

/** The largest N with < 1 % loss, and what ended the stepping. */
export const describeLimit = (server: string, steps: ReadonlyArray<Step>): string => {
  const best = sustained(steps).at(-1)
  const last = steps.at(-1)
  const limit = last === undefined || carried(last)
    ? `no step lost >= ${MAX_LOSS_PCT} % or had p99 >= ${MAX_P99_MS} ms (the step list, the time budget or the generator ended first)`
    : `N=${last.n} lost ${last.lossPct.toFixed(2)} %${last.latency === undefined ? "" : `, p99 ${ms(last.latency.p99)} ms`}`
  return `${server}: largest N with < ${MAX_LOSS_PCT} % loss and p99 < ${MAX_P99_MS} ms: ${best?.n ?? "none"} (${limit})`
}

/** Per N: each server's CPU per session and the ratio (baseline over service); "baseline+asr" where that phase ran. */
export const describeCpuPerSession = (
  service: ReadonlyArray<Step>,
  baseline: ReadonlyArray<Step>,
  withAsr: ReadonlyArray<Step>
): ReadonlyArray<string> => {
  const ns = [...new Set([...service, ...baseline].map((s) => s.n))].sort((a, b) => a - b)
  return ns.map((n) => {
    const a = service.find((s) => s.n === n)
    const b = baseline.find((s) => s.n === n)
    const c = withAsr.find((s) => s.n === n)
    const pct = (s: Step | undefined) => (s === undefined ? "na" : `${cpuPerSession(s).toFixed(3)} %${carried(s) ? "" : " (not carried)"}`)
    const ratio = (x: Step | undefined) => (a === undefined || x === undefined ? "na" : fmt(cpuPerSession(x) / cpuPerSession(a)))
    const asr = c === undefined ? "" : ` | baseline+asr ${pct(c)} ratio ${ratio(c)}`
    return `cpu per session N=${String(n).padStart(3)}: service ${pct(a)} baseline ${pct(b)} ratio ${ratio(b)}${asr}`
  })
}

/** The N the per-session figures are read at: N=100 when both carried it with < 1 % loss, else the largest N both did. */
export const referenceN = (service: ReadonlyArray<Step>, baseline: ReadonlyArray<Step>): number | undefined => {
  const both = sustained(service).filter((a) => sustained(baseline).some((b) => b.n === a.n)).map((s) => s.n)
  return both.includes(REFERENCE_N) ? REFERENCE_N : both.at(-1)
}

/**
 * RSS per added session between the step at half of `n` and the step at `n` of one stepped phase
 * (MB): what each further session costs, without what any load costs once (JIT code, heap growth,
 * the workers' buffers), which the growth over idle divides among the sessions.
 */
const rssSlope = (steps: ReadonlyArray<Step>, n: number | undefined): number => {
  const to = sustained(steps).find((s) => s.n === n)
  const from = steps.find((s) => n !== undefined && s.n === n / 2)
  return to === undefined || from === undefined ? Number.NaN : (to.rssMb - from.rssMb) / (to.n - from.n)
}

/** Mean CPU per session of the rounds' steps at `n` that carried it with < 1 % loss. */
const meanCpuPerSession = (rounds: ReadonlyArray<ReadonlyArray<Step>>, n: number | undefined): number => {
  const values = rounds.flatMap((steps) => sustained(steps).filter((s) => s.n === n).map(cpuPerSession))
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length
}

/** A later round at the reference N: the service, the baseline, the service with the WAV sink. */
export interface Round {
  readonly service: ReadonlyArray<Step>
  readonly baseline: ReadonlyArray<Step>
  readonly wav: ReadonlyArray<Step>
}

/** What one bench run measured: each phase's steps, and the later rounds at the reference N. */
export interface Phases {
  readonly service: ReadonlyArray<Step>
  readonly baseline: ReadonlyArray<Step>
  readonly withAsr: ReadonlyArray<Step>
  /** The service with the WAV sink, stepped. */
  readonly wav: ReadonlyArray<Step>
  readonly rounds: ReadonlyArray<Round>
}

/** One service phase's figures, each name with `prefix`: at its largest N with < 1 % loss, and per session at `n` over it and its rounds against the baselines (one per round, in order). */
const serviceFigures = (
  prefix: string,
  steps: ReadonlyArray<Step>,
  rounds: ReadonlyArray<ReadonlyArray<Step>>,
  baselines: ReadonlyArray<ReadonlyArray<Step>>,
  n: number | undefined
) => {
  const best = sustained(steps).at(-1)
  const cpu = meanCpuPerSession([steps, ...rounds], n)
  const ratios = [steps, ...rounds].map((round, i) => fmt(meanCpuPerSession([baselines[i] ?? []], n) / meanCpuPerSession([round], n)))
  return {
    cpu,
    figures: [
      `${prefix}max_sessions=${best?.n ?? 0}`,
      `${prefix}server_p50_ms=${fmt(best?.latency?.p50 ?? Number.NaN)}`,
      `${prefix}server_p99_ms=${fmt(best?.latency?.p99 ?? Number.NaN)}`,
      `${prefix}cpu_pct=${fmt(best?.cpuPct ?? Number.NaN, 0)}`,
      `${prefix}rss_mb=${fmt(best?.rssMb ?? Number.NaN, 0)}`,
      `${prefix}loss_pct=${fmt(best?.lossPct ?? Number.NaN)}`,
      `${prefix}cpu_per_session_pct=${fmt(cpu, 3)}`,
      `${prefix}rss_per_session_mb=${fmt(sustained(steps).find((s) => s.n === n)?.rssPerSessionMb ?? Number.NaN)}`,
      `${prefix}rss_slope_mb=${fmt(rssSlope(steps, n))}`,
      `${prefix}ratio=${fmt(meanCpuPerSession(baselines, n) / cpu)}`,
      `${prefix}round_ratios=${ratios.join("/")}`
    ]
  }
}

/**
 * The summary figures. Unprefixed: the service with the WAV sink (the embedded default, and the
 * setup of the issue's first figures) against the baseline; `gateway_`: the service forwarding to
 * the fake ASR gateway, against the baseline (`gateway_ratio`) and against baseline+asr (`asr_ratio`).
 * Per-session figures at the reference step, means over the rounds.
 */
export const summaryFigures = ({ service, baseline, withAsr, wav, rounds }: Phases, e2eP95: number): ReadonlyArray<string> => {
  const n = referenceN(wav, baseline)
  const baselines = [baseline, ...rounds.map((r) => r.baseline)]
  const sink = serviceFigures("", wav, rounds.map((r) => r.wav), baselines, n)
  const gateway = serviceFigures("gateway_", service, rounds.map((r) => r.service), baselines, n)
  const asrCpu = meanCpuPerSession([withAsr], n)
  return [
    ...sink.figures,
    `baseline_max_sessions=${sustained(baseline).at(-1)?.n ?? 0}`,
    `ref_sessions=${n ?? "na"}`,
    `baseline_cpu_per_session_pct=${fmt(meanCpuPerSession(baselines, n), 3)}`,
    `baseline_rss_slope_mb=${fmt(rssSlope(baseline, n))}`,
    ...gateway.figures,
    `gateway_e2e_p95_ms=${fmt(e2eP95, 1)}`,
    `asr_baseline_cpu_per_session_pct=${fmt(asrCpu, 3)}`,
    `asr_ratio=${fmt(asrCpu / gateway.cpu)}`
  ]
}
