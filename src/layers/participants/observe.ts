import { Effect } from "effect"
import { Counter } from "prom-client"
import { Health } from "../Health.ts"
import { Metrics } from "../Metrics.ts"
import type { CacheStats } from "./cache.ts"

/** `auralink_participant_state_reads_total{result}` on the service's registry; what the cache calls on every read. */
export const readsCounter = Effect.gen(function*() {
  const { registry } = yield* Metrics
  const reads = new Counter({
    name: "auralink_participant_state_reads_total",
    help: "Reads of a participant's state by this instance, by whether its local cache held it",
    labelNames: ["result"] as const,
    registers: [registry]
  })
  return (hit: boolean) => reads.inc({ result: hit ? "hit" : "miss" })
})

/** The `/status` "participants" section: the local cache's size and hit rate. */
export const statusSection = (stats: () => CacheStats) =>
  Health.use((health) =>
    health.section(
      "participants",
      Effect.sync(() => {
        const { cached, hits, misses } = stats()
        const reads = hits + misses
        return { cached, cache_hits: hits, cache_misses: misses, cache_hit_pct: reads === 0 ? 0 : Math.round(hits / reads * 1000) / 10 }
      })
    )
  )
