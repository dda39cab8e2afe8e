import { Counter, Gauge, type Registry } from "prom-client"

const getOrCreate = <M>(registry: Registry, name: string, create: () => M): M =>
  (registry.getSingleMetric(name) as M | undefined) ?? create()

/** The ASR gateway client's metrics on the service registry. */
export const asrMetrics = (registry: Registry) => ({
  streams: getOrCreate(registry, "auralink_asr_streams", () =>
    new Gauge({
      name: "auralink_asr_streams",
      help: "Open ASR gateway session streams by state (connected, reconnecting)",
      labelNames: ["state"] as const,
      registers: [registry]
    })),
  chunksSent: getOrCreate(registry, "auralink_asr_chunks_sent_total", () =>
    new Counter({ name: "auralink_asr_chunks_sent_total", help: "Audio chunks written to the ASR gateway (replays included)", registers: [registry] })),
  chunksReplayed: getOrCreate(registry, "auralink_asr_chunks_replayed_total", () =>
    new Counter({ name: "auralink_asr_chunks_replayed_total", help: "Audio chunks re-sent from the replay buffer after a reconnect", registers: [registry] })),
  chunksDropped: getOrCreate(registry, "auralink_asr_chunks_dropped_total", () =>
    new Counter({
      name: "auralink_asr_chunks_dropped_total",
      help: "Audio chunks never delivered to the ASR gateway, by reason (replay_buffer_full, closed_unsent)",
      labelNames: ["reason"] as const,
      registers: [registry]
    })),
  reconnects: getOrCreate(registry, "auralink_asr_reconnects_total", () =>
    new Counter({ name: "auralink_asr_reconnects_total", help: "ASR gateway streams re-established after a failure", registers: [registry] })),
  transcripts: getOrCreate(registry, "auralink_asr_transcripts_total", () =>
    new Counter({
      name: "auralink_asr_transcripts_total",
      help: "Transcripts received from the ASR gateway, by finality",
      labelNames: ["final"] as const,
      registers: [registry]
    }))
})
export type AsrMetrics = ReturnType<typeof asrMetrics>
