import { Counter, type CounterConfiguration, Gauge, type GaugeConfiguration, type Registry } from "prom-client"

/** The registry's gauge of that name if there is one, else a new one (registered on `registry`). */
const gauge = <T extends string>(registry: Registry, config: GaugeConfiguration<T>): Gauge<T> => {
  const existing = registry.getSingleMetric(config.name)
  return existing instanceof Gauge ? existing : new Gauge({ ...config, registers: [registry] })
}

/** The registry's counter of that name if there is one, else a new one (registered on `registry`). */
const counter = <T extends string>(registry: Registry, config: CounterConfiguration<T>): Counter<T> => {
  const existing = registry.getSingleMetric(config.name)
  return existing instanceof Counter ? existing : new Counter({ ...config, registers: [registry] })
}

/** The ASR gateway client's metrics on the service registry. */
export const asrMetrics = (registry: Registry) => ({
  streams: gauge(registry, {
    name: "auralink_asr_streams",
    help: "Open ASR gateway session streams by state (connected, reconnecting)",
    labelNames: ["state"] as const
  }),
  chunksSent: counter(registry, { name: "auralink_asr_chunks_sent_total", help: "Audio chunks written to the ASR gateway (replays included)" }),
  chunksReplayed: counter(registry, { name: "auralink_asr_chunks_replayed_total", help: "Audio chunks re-sent from the replay buffer after a reconnect" }),
  chunksDropped: counter(registry, {
    name: "auralink_asr_chunks_dropped_total",
    help: "Audio chunks never delivered to the ASR gateway, by reason (replay_buffer_full, closed_unsent)",
    labelNames: ["reason"] as const
  }),
  reconnects: counter(registry, { name: "auralink_asr_reconnects_total", help: "ASR gateway streams re-established after a failure" }),
  transcripts: counter(registry, {
    name: "auralink_asr_transcripts_total",
    help: "Transcripts received from the ASR gateway, by finality",
    labelNames: ["final"] as const
  })
})
export type AsrMetrics = ReturnType<typeof asrMetrics>
