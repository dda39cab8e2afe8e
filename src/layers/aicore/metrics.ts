import { Context, Effect, Layer } from "effect"
import { Counter, Gauge, Histogram } from "prom-client"
import type { RtpParseErrorReason } from "../../media/rtp.ts"
import type { FallbackReason } from "../../schemas/aicore.ts"
import { Metrics } from "../Metrics.ts"

/** Why a packet was not forwarded: an RTP parse error reason, or the output buffer was full (the sink fell behind). */
export type AicDropReason = RtpParseErrorReason | "output_overflow"

/** Running totals behind `/status` (the same events as the Prometheus series). */
export interface AicTotals {
  readonly pipelines: number
  readonly framesProcessed: number
  readonly framesCompressed: number
  readonly originalBytes: number
  readonly compressedBytes: number
  readonly bandwidthSavedBytes: number
  readonly fallbacks: Readonly<Record<FallbackReason, number>>
  readonly packetsForwarded: number
  readonly packetsDropped: Readonly<Partial<Record<AicDropReason, number>>>
  readonly payloadRejects: number
  readonly bytesIn: number
  readonly bytesOut: number
}

/**
 * AIC pipeline metrics on the service's registry (names from the seed). Recorders are plain
 * synchronous functions: they run per frame or per packet batch on the media hot path.
 *
 * - `auralink_aic_frames_processed_total`: frames through a pipeline (compressed or not).
 * - `auralink_aic_frames_compressed_total`: frames the AI Core answered with a smaller payload.
 * - `auralink_aic_compression_ratio`: histogram of compressed / original size of those frames.
 * - `auralink_aic_bandwidth_saved_bytes`: original − compressed bytes summed over those frames
 *   (what the AI Core saves; on the wire only in `replace` mode, see the bytes series).
 * - `auralink_aic_latency_seconds`: histogram of the AI Core round trip per frame sent to it
 *   (result, failure or deadline). The seed's `auralink_aic_latency_ms`, in the base unit:
 *   `promtool check metrics` rejects `_ms` and `_milliseconds` names.
 * - `auralink_aic_fallbacks_total{reason}`: frames forwarded unchanged, by reason.
 * - `auralink_aic_packets_forwarded_total`, `auralink_aic_packets_dropped_total{reason}`
 *   (malformed RTP by parse reason, or `output_overflow`), `auralink_aic_payload_rejects_total`
 *   (valid RTP whose payload did not classify; forwarded), `auralink_aic_bytes_total{direction}`
 *   (RTP bytes into and out of the pipelines), `auralink_aic_pipelines` (running pipelines).
 */
export class AicMetrics extends Context.Service<AicMetrics, {
  readonly pipelineStarted: () => void
  readonly pipelineEnded: () => void
  readonly frame: (originalBytes: number) => void
  readonly compressed: (originalBytes: number, compressedBytes: number) => void
  readonly fallback: (reason: FallbackReason) => void
  readonly latency: (ms: number) => void
  readonly forwarded: (packets: number, bytes: number) => void
  readonly received: (bytes: number) => void
  readonly dropped: (reason: AicDropReason) => void
  readonly payloadRejected: () => void
  readonly totals: () => AicTotals
}>()("auralink/aicore/AicMetrics") {
  static readonly layer = Layer.effect(
    AicMetrics,
    Effect.gen(function*() {
      const { registry } = yield* Metrics
      const registers = [registry]
      const fallbacks: Record<FallbackReason, number> = {
        disabled: 0,
        circuit_open: 0,
        overloaded: 0,
        unavailable: 0,
        timeout: 0,
        error: 0,
        invalid_result: 0,
        closed: 0
      }
      const packetsDropped: Partial<Record<AicDropReason, number>> = {}
      const t = {
        pipelines: 0,
        framesProcessed: 0,
        framesCompressed: 0,
        originalBytes: 0,
        compressedBytes: 0,
        bandwidthSavedBytes: 0,
        packetsForwarded: 0,
        payloadRejects: 0,
        bytesIn: 0,
        bytesOut: 0
      }
      // Counters are published from the running totals at scrape time: the hot path only adds numbers.
      const counter = (name: string, help: string, value: () => number) =>
        new Counter({
          name,
          help,
          registers,
          collect() {
            this.reset()
            this.inc(value())
          }
        })
      const labelled = (name: string, help: string, label: string, values: () => Readonly<Record<string, number>>) =>
        new Counter<string>({
          name,
          help,
          labelNames: [label],
          registers,
          collect() {
            this.reset()
            for (const [key, value] of Object.entries(values())) this.inc({ [label]: key }, value)
          }
        })
      const gauge = (name: string, help: string, value: () => number) =>
        new Gauge({
          name,
          help,
          registers,
          collect() {
            this.set(value())
          }
        })
      counter("auralink_aic_frames_processed_total", "Video frames through the AIC pipeline", () => t.framesProcessed)
      counter("auralink_aic_frames_compressed_total", "Frames the AI Core compressed (smaller payload)", () => t.framesCompressed)
      const ratio = new Histogram({
        name: "auralink_aic_compression_ratio",
        help: "Compressed / original size of the frames the AI Core compressed",
        buckets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1],
        registers
      })
      gauge(
        "auralink_aic_bandwidth_saved_bytes",
        "Payload bytes saved by AI Core compression (original - compressed), summed since start",
        () => t.bandwidthSavedBytes
      )
      const latency = new Histogram({
        name: "auralink_aic_latency_seconds",
        help: "AI Core round trip per frame sent to it (result, failure or deadline), seconds",
        buckets: [0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.05, 0.1],
        registers
      })
      labelled("auralink_aic_fallbacks_total", "Frames forwarded with their original payload, by reason", "reason", () => fallbacks)
      counter("auralink_aic_packets_forwarded_total", "RTP packets the AIC pipeline forwarded", () => t.packetsForwarded)
      labelled(
        "auralink_aic_packets_dropped_total",
        "Packets the AIC pipeline did not forward: malformed RTP (by parse reason) or output_overflow",
        "reason",
        () => ({ output_overflow: 0, ...packetsDropped })
      )
      counter("auralink_aic_payload_rejects_total", "Valid RTP packets whose video payload did not classify (forwarded unchanged)", () => t.payloadRejects)
      labelled("auralink_aic_bytes_total", "RTP bytes into (in) and out of (out) the AIC pipelines", "direction", () => ({ in: t.bytesIn, out: t.bytesOut }))
      gauge("auralink_aic_pipelines", "Running AIC pipelines (one per video source)", () => t.pipelines)

      return {
        pipelineStarted: () => void t.pipelines++,
        pipelineEnded: () => void t.pipelines--,
        frame: (originalBytes) => {
          t.framesProcessed++
          t.originalBytes += originalBytes
        },
        compressed: (originalBytes, compressedBytes) => {
          t.framesCompressed++
          t.compressedBytes += compressedBytes
          t.bandwidthSavedBytes += originalBytes - compressedBytes
          ratio.observe(originalBytes > 0 ? compressedBytes / originalBytes : 1)
        },
        fallback: (reason) => void fallbacks[reason]++,
        latency: (ms) => latency.observe(ms / 1000),
        forwarded: (packets, n) => {
          t.packetsForwarded += packets
          t.bytesOut += n
        },
        received: (n) => void (t.bytesIn += n),
        dropped: (reason) => void (packetsDropped[reason] = (packetsDropped[reason] ?? 0) + 1),
        payloadRejected: () => void t.payloadRejects++,
        totals: () => ({ ...t, fallbacks: { ...fallbacks }, packetsDropped: { ...packetsDropped } })
      }
    })
  )
}
