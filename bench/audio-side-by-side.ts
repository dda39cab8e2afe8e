// bench/audio-ingest's side-by-side phase: two servers under load at the same moment, each with N
// sessions from a load generator of its own, their CPU read over the same windows. On a shared
// machine the load drifts between phases minutes apart (single rounds' ratios spread 0.59-0.82 at
// the reference N); what drifts in the same window drifts for both, so the pair's ratio holds
// within a few hundredths from window to window.
import { RemoteGenerator } from "./audio-generator-client.ts"
import { pathsToAdd } from "./audio-streams.ts"
import { CLOCK_TICKS, fmt, processTree, sleep } from "./ingest-rig.ts"

/** Where the second server of a pair listens for media (the first has MEDIA_ENV's ports). */
export const SECOND_MEDIA_ENV: Readonly<Record<string, string>> = { RTC_PORT: "50000", RTC_MIN_PORT: "50010", RTC_MAX_PORT: "54999" }

/** A server of a pair, running. */
export interface PairServer {
  readonly name: string
  readonly base: string
  readonly pid: number
  readonly auth: Record<string, string>
}

/** One server's CPU over the pair's windows, % of one core: the process tree and the main thread. */
export interface PairCpu {
  readonly cpuPct: number
  readonly mainCpuPct: number
}

export interface Pair {
  readonly n: number
  readonly first: PairServer & PairCpu
  readonly second: PairServer & PairCpu
  /** first / second per window (CPU of the process trees). */
  readonly windowRatios: ReadonlyArray<number>
}

const SETTLE_MS = 5_000

/** Opens `n` sessions on each server (half PCM, half RTP, as the steps), then reads both servers' CPU over `windows` windows of `windowMs`. */
export const sideBySide = async (first: PairServer, second: PairServer, n: number, windows: number, windowMs: number): Promise<Pair> => {
  // One process each: at PAIR_N sessions one is far from saturated, and the pair adds no more processes than it needs.
  const generators = [await RemoteGenerator.start(1), await RemoteGenerator.start(1)] as const
  try {
    await generators[0].open(first.base, first.auth, pathsToAdd([], n))
    await generators[1].open(second.base, second.auth, pathsToAdd([], n))
    await sleep(SETTLE_MS)
    // Both servers read at each window's edges: a window's CPU is the difference of two readings.
    const read = () => [processTree(first.pid), processTree(second.pid)] as const
    const used = (from: ReturnType<typeof read>, to: ReturnType<typeof read>, i: 0 | 1) => ({
      ticks: to[i].ticks - from[i].ticks,
      mainTicks: to[i].mainTicks - from[i].mainTicks
    })
    const start = read()
    let last = start
    const windowRatios: Array<number> = []
    for (let w = 0; w < windows; w++) {
      await sleep(windowMs)
      const now = read()
      windowRatios.push(used(last, now, 0).ticks / used(last, now, 1).ticks)
      last = now
    }
    const pct = (ticks: number) => (100 * ticks) / CLOCK_TICKS / ((windows * windowMs) / 1000)
    const cpu = (i: 0 | 1): PairCpu => {
      const total = used(start, last, i)
      return { cpuPct: pct(total.ticks), mainCpuPct: pct(total.mainTicks) }
    }
    return { n, first: { ...first, ...cpu(0) }, second: { ...second, ...cpu(1) }, windowRatios }
  } finally {
    for (const generator of generators) {
      await generator.close().catch(() => undefined)
      generator.stop()
    }
  }
}

/** first / second over all windows: the process trees' CPU, and the main threads'. */
export const pairRatio = (p: Pair): number => p.first.cpuPct / p.second.cpuPct
export const pairMainRatio = (p: Pair): number => p.first.mainCpuPct / p.second.mainCpuPct

export const describePair = (p: Pair): string => {
  const server = (s: PairServer & PairCpu) => `${s.name} ${fmt(s.cpuPct, 1)} % (main thread ${fmt(s.mainCpuPct, 1)} %)`
  const spread = `${fmt(Math.min(...p.windowRatios))}-${fmt(Math.max(...p.windowRatios))}`
  return `side by side, N=${p.n} each: ${server(p.first)} | ${server(p.second)} | ratio ${fmt(pairRatio(p))} (windows ${spread}), main threads ${
    fmt(pairMainRatio(p))
  }`
}
