// AuraID resolution: BENCH_AURAID_RESOLVES (20,000) resolves over BENCH_AURAID_IDENTITIES (10,000) identities drawn
// from a Zipf distribution (exponent BENCH_AURAID_ZIPF_S, 1.0; seeded), one at a time, through the program the REST
// handler runs (`resolveAuraId`, in-process: no HTTP in front) over the real layer: in-process LRU, the Redis state
// store (REDIS_URL, default redis://127.0.0.1:6379, a prefix of its own), and the fake Communication Service on
// 127.0.0.1 (real HTTP). Starts with empty caches, so every identity's first resolve goes upstream.
// hit_pct: resolves answered without an upstream call; upstream_per_1000: upstream calls per 1,000 resolves.
// baseline: a bare state-store GET (the same StateStore service, the same Redis) of one stored key, timed in
// the same run after the resolves; ratio = baseline_p50 / resolve_p50.
import { Effect, Layer } from "effect"
import { performance } from "node:perf_hooks"
import { AuraIdResolver } from "../src/layers/AuraIdResolver.ts"
import { AppConfig } from "../src/layers/Config.ts"
import { Health } from "../src/layers/Health.ts"
import { Metrics } from "../src/layers/Metrics.ts"
import { StateStore } from "../src/layers/StateStore.ts"
import { resolveAuraId } from "../src/programs/auraid/resolve.ts"
import type { Principal } from "../src/schemas/auth.ts"
import { FakeCommunicationService } from "../test/support/fake-communication-service.ts"
import { deleteKeys, REDIS_URL } from "../test/support/redis.ts"
import { type BenchResult, percentile } from "./support.ts"

const RESOLVES = Number(process.env["BENCH_AURAID_RESOLVES"] ?? 20_000)
const IDENTITIES = Number(process.env["BENCH_AURAID_IDENTITIES"] ?? 10_000)
const ZIPF_S = Number(process.env["BENCH_AURAID_ZIPF_S"] ?? 1.0)
const BASELINE_GETS = 5_000
const API_KEY = "bench-communication-key"

/** mulberry32: a small seeded PRNG, so every run draws the same sequence. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** Draws ranks 0..n-1 with P(k) proportional to 1/(k+1)^s (inverse CDF by binary search). */
const zipf = (n: number, s: number, random: () => number) => {
  const cdf = new Float64Array(n)
  let total = 0
  for (let k = 0; k < n; k++) cdf[k] = total += 1 / Math.pow(k + 1, s)
  return () => {
    const u = random() * total
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((cdf[mid] ?? 0) < u) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

const us = (ms: number) => Math.round(ms * 1000)

/** Runs `effect` `times` times, one after another; the duration of each in ms. */
const timed = <E, R>(times: number, effect: (i: number) => Effect.Effect<unknown, E, R>) =>
  Effect.gen(function*() {
    const durations: Array<number> = []
    for (let i = 0; i < times; i++) {
      const started = performance.now()
      yield* effect(i)
      durations.push(performance.now() - started)
    }
    return durations
  })

export const run = async (): Promise<BenchResult> => {
  const fake = new FakeCommunicationService({ apiKey: API_KEY })
  fake.seed(IDENTITIES)
  await fake.start()
  const prefix = `bench-auraid-${crypto.randomUUID().slice(0, 8)}:`
  const config = AppConfig.layerFrom({
    REDIS_URL,
    REDIS_KEY_PREFIX: prefix,
    COMMUNICATION_SERVICE_URL: fake.url,
    COMMUNICATION_SERVICE_API_KEY: API_KEY,
    LOG_LEVEL: "warn"
  })
  const services = AuraIdResolver.layer.pipe(
    Layer.provideMerge(StateStore.layer),
    Layer.provideMerge(Layer.mergeAll(Metrics.layer, Health.layer)),
    Layer.provideMerge(config)
  )
  const principal: Principal = { userId: "bench-reader", deviceId: "bench-device", scope: "session", jti: "bench", exp: 0 }
  const draw = zipf(IDENTITIES, ZIPF_S, prng(14))
  const ids = Array.from({ length: RESOLVES }, () => `aura:user-${draw()}`)
  try {
    const { baseline, resolves, status } = await Effect.runPromise(
      Effect.gen(function*() {
        const resolves = yield* timed(RESOLVES, (i) => resolveAuraId(principal, ids[i] ?? ""))
        const store = yield* StateStore
        yield* store.set("bench:baseline", JSON.stringify({ auraId: "aura:user-0", displayName: "User 0" }))
        yield* timed(500, () => store.get("bench:baseline"))
        const baseline = yield* timed(BASELINE_GETS, () => store.get("bench:baseline"))
        const status = yield* Health.use((h) => h.sections)
        return { baseline, resolves, status }
      }).pipe(Effect.scoped, Effect.provide(services))
    )
    const upstream = fake.callCount("get") + fake.callCount("batch")
    const distinct = new Set(ids).size
    const hitPct = (1 - upstream / RESOLVES) * 100
    const p50 = percentile(resolves, 50)
    const baselineP50 = percentile(baseline, 50)
    console.log(`  ${RESOLVES} resolves of ${distinct} distinct ids (of ${IDENTITIES}, Zipf s=${ZIPF_S}); upstream calls ${upstream}`)
    console.log(
      `  resolve p50 ${us(p50)} µs / p99 ${us(percentile(resolves, 99))} µs; state-store GET p50 ${us(baselineP50)} µs / p99 ${
        us(percentile(baseline, 99))
      } µs (n=${BASELINE_GETS})`
    )
    const seen = new Set<string>()
    const firsts = resolves.filter((_, i) => {
      const id = ids[i] ?? ""
      const first = !seen.has(id)
      seen.add(id)
      return first
    })
    console.log(`  first resolve of an id (upstream GET + store GET and SET) p50 ${us(percentile(firsts, 50))} µs / p99 ${us(percentile(firsts, 99))} µs`)
    console.log(`  /status auraid: ${JSON.stringify(status["auraid"])}`)
    return {
      summary: `auraid resolves=${RESOLVES} hit_pct=${hitPct.toFixed(1)} upstream_per_1000=${(upstream / RESOLVES * 1000).toFixed(1)} p50_us=${
        us(p50)
      } p99_us=${us(percentile(resolves, 99))} baseline_p50_us=${us(baselineP50)} ratio=${(baselineP50 / p50).toFixed(2)}`
    }
  } finally {
    await fake.stop()
    await deleteKeys(`${prefix}*`)
  }
}
