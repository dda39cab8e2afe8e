import { Effect } from "effect"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"

const mb = (bytes: number) => Math.round(bytes / 1024 / 102.4) / 10

/**
 * One memory-reducing full garbage collection, once the service has started. Start-up (module
 * loading, the layer build) grows V8's young generation to its maximum (2 x `--max-semi-space-size`)
 * and V8 keeps those pages for reuse; its memory reducer, which would give them back, judged the
 * idle service's allocation rate high and never ran: ~40 MB of RSS held for nothing until load came
 * (README, "Memory"). One collection of ~60-170 ms at start returns them.
 *
 * `gc` is taken from a new context with `--expose-gc` set only for that moment (the pattern of
 * Node's `v8.setFlagsFromString` docs): the service's own global never has it, and the flag is
 * restored so V8's flag hash, which keys the compile cache, is what the command line set.
 */
export const releaseStartUpMemory = Effect.suspend(() => {
  setFlagsFromString("--expose-gc")
  const gc: unknown = runInNewContext("gc")
  setFlagsFromString("--no-expose-gc")
  if (typeof gc !== "function") return Effect.logWarning("start-up memory not released: no gc function")
  const before = process.memoryUsage.rss()
  const started = performance.now()
  // "last-resort": V8's CollectAllAvailableGarbage, the collection that also releases pooled pages.
  Reflect.apply(gc, undefined, [{ type: "major", execution: "sync", flavor: "last-resort" }])
  return Effect.logDebug("start-up memory released").pipe(Effect.annotateLogs({
    event: "start_up_gc",
    ms: Math.round(performance.now() - started),
    rssBeforeMb: mb(before),
    rssAfterMb: mb(process.memoryUsage.rss())
  }))
})
