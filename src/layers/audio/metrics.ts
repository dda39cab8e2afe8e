import { Context, Effect, Layer } from "effect"
import { Counter, Histogram } from "prom-client"
import { type AudioPath, audioPaths, type ChunkRejectReason, type RtpRejectReason } from "../../schemas/audio.ts"
import { Metrics } from "../Metrics.ts"

/** Why a valid chunk was dropped before reaching the sink. */
export type AudioDropReason = "overflow" | "duplicate" | "late"

/**
 * Audio ingest metrics on the service's registry. The recorders are plain synchronous functions:
 * they run in media callbacks, once per chunk, on the hot path.
 *
 * - `auralink_audio_chunks_total{path}`: valid chunks accepted (data channel: parsed chunks;
 *   RTP: decoded packets).
 * - `auralink_audio_bytes_total{path}`: bytes received (data channel: whole messages, rejects
 *   included; RTP: Opus payload bytes).
 * - `auralink_audio_chunk_rejects_total{path,reason}`: chunks/packets rejected by validation.
 * - `auralink_audio_chunks_dropped_total{path,reason}`: valid chunks dropped: `overflow` (the
 *   per-session buffer was full and the oldest chunk made room), `duplicate`, `late`.
 * - `auralink_audio_loss_total{path}`: chunks missing from the sequence (gaps).
 * - `auralink_audio_reordered_total{path}`: RTP packets that came out of order and were put back in
 *   place by the jitter buffer (late ones, past its window, are `dropped{reason="late"}`).
 * - `auralink_audio_concealed_total{path}`: lost RTP packets filled with Opus packet-loss concealment.
 * - `auralink_audio_server_latency_seconds{path}`: receipt -> handed to the sink (seconds, the
 *   Prometheus base unit: promtool rejects `_ms`).
 */
export class AudioMetrics extends Context.Service<AudioMetrics, {
  readonly chunk: (path: AudioPath) => void
  readonly bytes: (path: AudioPath, bytes: number) => void
  readonly reject: (path: AudioPath, reason: ChunkRejectReason | RtpRejectReason) => void
  readonly dropped: (path: AudioPath, reason: AudioDropReason, count?: number) => void
  readonly loss: (path: AudioPath, count: number) => void
  readonly reordered: (path: AudioPath) => void
  readonly concealed: (path: AudioPath, count: number) => void
  readonly latency: (path: AudioPath, ms: number) => void
}>()("auralink/audio/AudioMetrics") {
  static readonly layer = Layer.effect(
    AudioMetrics,
    Effect.gen(function*() {
      const { registry } = yield* Metrics
      // Path-only counters, bound per path: no label lookup on the hot path; series exist from the start.
      const byPath = <T>(make: (path: AudioPath) => T): Record<AudioPath, T> => ({ datachannel: make("datachannel"), rtp: make("rtp") })
      const pathCounter = (name: string, help: string) => {
        const counter = new Counter({ name, help, labelNames: ["path"] as const, registers: [registry] })
        return byPath((path) => counter.labels(path))
      }
      const chunkOf = pathCounter("auralink_audio_chunks_total", "Valid audio chunks accepted, by ingest path")
      const bytesOf = pathCounter("auralink_audio_bytes_total", "Audio bytes received (data channel: whole messages; RTP: Opus payload), by ingest path")
      const rejects = new Counter({
        name: "auralink_audio_chunk_rejects_total",
        help: "Audio chunks or RTP packets rejected by validation, by path and reason",
        labelNames: ["path", "reason"] as const,
        registers: [registry]
      })
      const dropped = new Counter({
        name: "auralink_audio_chunks_dropped_total",
        help: "Valid audio chunks dropped before the sink (overflow: buffer full, oldest dropped; duplicate; late)",
        labelNames: ["path", "reason"] as const,
        registers: [registry]
      })
      const lossOf = pathCounter("auralink_audio_loss_total", "Audio chunks missing from the sequence (gaps), by ingest path")
      const reorderedOf = pathCounter(
        "auralink_audio_reordered_total",
        "RTP packets that arrived out of order and were put back in place by the jitter buffer, by ingest path"
      )
      const concealedOf = pathCounter("auralink_audio_concealed_total", "Lost RTP packets filled with Opus packet-loss concealment, by ingest path")
      const latency = new Histogram({
        name: "auralink_audio_server_latency_seconds",
        help: "Server-added audio latency, receipt to hand-off to the sink, in ms, by ingest path",
        labelNames: ["path"] as const,
        buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
        registers: [registry]
      })
      const latencyOf = byPath((path) => latency.labels(path))
      for (const path of audioPaths) dropped.labels(path, "overflow").inc(0)
      return {
        chunk: (path) => chunkOf[path].inc(),
        bytes: (path, n) => bytesOf[path].inc(n),
        reject: (path, reason) => rejects.labels(path, reason).inc(),
        dropped: (path, reason, count = 1) => dropped.labels(path, reason).inc(count),
        loss: (path, count) => lossOf[path].inc(count),
        reordered: (path) => reorderedOf[path].inc(),
        concealed: (path, count) => concealedOf[path].inc(count),
        latency: (path, ms) => latencyOf[path].observe(ms / 1000)
      }
    })
  )
}
