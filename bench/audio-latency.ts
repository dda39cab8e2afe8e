// The service's server-side audio latency (`auralink_audio_server_latency_seconds`, receipt -> sink
// hand-off) over a measured window: the histogram's buckets read at both ends, quantiles of the deltas;
// and what the service itself took and dropped in the window (to tell where a step's loss happened).

export type Buckets = ReadonlyArray<readonly [number, number]>

/** Chunks the service accepted per path (`auralink_audio_chunks_total`) and dropped (audio and ASR drops, any reason). */
interface ChunkCounts {
  readonly rtp: number
  readonly datachannel: number
  readonly dropped: number
  /** The audio pipeline's drops (`auralink_audio_chunks_dropped_total`) per path: accepted, then not handed to the sink. */
  readonly droppedRtp: number
  readonly droppedDatachannel: number
}

/**
 * The cumulative buckets (le in ms, count) of `auralink_audio_server_latency_seconds`, per path and
 * both summed, and the service's chunk counters.
 */
export const latencyBuckets = async (base: string): Promise<Record<"rtp" | "datachannel" | "all", Buckets> & { readonly counts: ChunkCounts }> => {
  const text = await fetch(`${base}/metrics`).then((r) => r.text())
  const byPath = { rtp: new Map<number, number>(), datachannel: new Map<number, number>(), all: new Map<number, number>() }
  const counts = { rtp: 0, datachannel: 0, dropped: 0, droppedRtp: 0, droppedDatachannel: 0 }
  for (const line of text.split("\n")) {
    const counter = /^auralink_(audio_chunks_total|audio_chunks_dropped_total|asr_chunks_dropped_total)\{(.*)\} (\S+)$/.exec(line)
    if (counter !== null) {
      const path = /path="([^"]+)"/.exec(counter[2] ?? "")?.[1]
      const value = Number(counter[3])
      if (counter[1] !== "audio_chunks_total") counts.dropped += value
      if (counter[1] === "audio_chunks_dropped_total" && path === "rtp") counts.droppedRtp += value
      if (counter[1] === "audio_chunks_dropped_total" && path === "datachannel") counts.droppedDatachannel += value
      if (counter[1] === "audio_chunks_total" && (path === "rtp" || path === "datachannel")) counts[path] += value
      continue
    }
    const m = /^auralink_audio_server_latency_seconds_bucket\{(.*)\} (\S+)$/.exec(line)
    const path = /path="([^"]+)"/.exec(m?.[1] ?? "")?.[1]
    const le = /le="([^"]+)"/.exec(m?.[1] ?? "")?.[1]
    if (m === null || le === undefined || (path !== "rtp" && path !== "datachannel")) continue
    const bound = le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le) * 1000
    for (const map of [byPath[path], byPath.all]) map.set(bound, (map.get(bound) ?? 0) + Number(m[2]))
  }
  const sorted = (map: Map<number, number>): Buckets => [...map].sort((a, b) => a[0] - b[0])
  return { rtp: sorted(byPath.rtp), datachannel: sorted(byPath.datachannel), all: sorted(byPath.all), counts }
}

/** histogram_quantile over the bucket deltas `after - before` (linear within a bucket). */
export const quantile = (before: Buckets, after: Buckets, q: number): number => {
  const deltas: Buckets = after.map(([le, count]): readonly [number, number] => [le, count - (before.find(([l]) => l === le)?.[1] ?? 0)])
  const total = deltas[deltas.length - 1]?.[1] ?? 0
  if (total === 0) return Number.NaN
  const rank = q * total
  let lowerLe = 0
  let lowerCount = 0
  for (const [le, count] of deltas) {
    if (count >= rank) {
      if (le === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY // beyond the last bucket
      return lowerLe + ((le - lowerLe) * (rank - lowerCount)) / Math.max(1, count - lowerCount)
    }
    lowerLe = le
    lowerCount = count
  }
  return lowerLe
}

/** A latency quantile; beyond the histogram's last finite bucket (1000 ms) it reads `>1000`. */
export const ms = (n: number): string => (n === Number.POSITIVE_INFINITY ? ">1000" : n.toFixed(2))

export type LatencyBuckets = Awaited<ReturnType<typeof latencyBuckets>>

/** The window's server latency (ms): p50 and p99 of both paths, p99 of each. */
export interface WindowLatency {
  readonly p50: number
  readonly p99: number
  readonly rtpP99: number
  readonly pcmP99: number
  /** Chunks the service accepted in the window (RTP: decoded packets; PCM: valid chunks), and dropped. */
  readonly accepted: { readonly rtp: number; readonly pcm: number }
  readonly dropped: number
  /** Of `dropped`, those the audio pipeline dropped (its buffer full, duplicates, late); the rest the ASR stream did. */
  readonly droppedByPipeline: number
}

export const windowLatency = (before: LatencyBuckets, after: LatencyBuckets): WindowLatency => ({
  p50: quantile(before.all, after.all, 0.5),
  p99: quantile(before.all, after.all, 0.99),
  rtpP99: quantile(before.rtp, after.rtp, 0.99),
  pcmP99: quantile(before.datachannel, after.datachannel, 0.99),
  accepted: { rtp: after.counts.rtp - before.counts.rtp, pcm: after.counts.datachannel - before.counts.datachannel },
  dropped: after.counts.dropped - before.counts.dropped,
  droppedByPipeline: after.counts.droppedRtp + after.counts.droppedDatachannel - before.counts.droppedRtp - before.counts.droppedDatachannel
})
