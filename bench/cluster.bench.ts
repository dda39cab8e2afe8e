import * as PgClient from "@effect/sql-pg/PgClient"
import { Effect, Layer, Redacted } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import { randomUUID } from "node:crypto"
import { performance } from "node:perf_hooks"
import { AppConfig } from "../src/layers/Config.ts"
import { Sessions } from "../src/layers/SessionStore.ts"
import { defaultConfig } from "../src/programs/sessions/start.ts"
import { captureOpusRtp } from "../test/support/ffmpeg-rtp.ts"
import { RemoteFakeAsr } from "./fake-asr-client.ts"
import { accessToken, api, field, firstChunk, fmt, FRAME_MS, opusSender, withService } from "./ingest-rig.ts"
import { type BenchResult, percentile } from "./support.ts"
import { publishWhip } from "./whip-client.ts"

// Two instances (`node src/main.ts` each) on one Postgres database and one Redis prefix, audio to
// the fake ASR gateway (its own process).
//
// 1. Session start plus media set-up, SETUPS times each way, alternating: `POST /api/session` to A
//    (where a load balancer sends new sessions), then WHIP (werift, one Opus track) either to A
//    (direct) or to B, which answers 307 to A's PUBLIC_URL with a redirect ticket; fetch follows it
//    (dropping Authorization, as it does across origins). Timed from the session POST to the fake
//    ASR's receipt of the session's first chunk.
// 2. The admission decision: SessionStore.create with the owner's capacity check (a per-instance
//    advisory lock and a count, in the insert's transaction) next to the same create without it
//    (both with the per-user caps, as POST /api/session), ADMISSIONS times each, alternating, in
//    this process on the same database.
//
// ratio = direct_setup_p50 / redirected_setup_p50 (1 = the redirect costs nothing; lower is worse).

const SETUPS = Number(process.env["BENCH_CLUSTER_SETUPS"] ?? 30)
const ADMISSIONS = Number(process.env["BENCH_CLUSTER_ADMISSIONS"] ?? 300)

interface Setup {
  readonly sessionMs: number
  readonly firstChunkMs: number
}

const setup = async (a: string, target: string, token: string, fake: RemoteFakeAsr, templates: ReadonlyArray<Buffer>): Promise<Setup> => {
  const auth = { authorization: `Bearer ${token}` }
  const began = Date.now()
  const id = field(await api(a, "POST", "/api/session", {}, auth, 201), "id")
  const sessionMs = Date.now() - began
  const publisher = await publishWhip(target, token, `/whip/sessions/${id}`)
  try {
    const at = await firstChunk(fake, id, opusSender(publisher.sender, publisher.payloadType, templates))
    return { sessionMs, firstChunkMs: at - began }
  } finally {
    await publisher.close()
  }
}

/** p50 of SessionStore.create with and without the owner's capacity check, alternating, on `databaseUrl`. */
const admissionCost = (databaseUrl: string) =>
  Effect.gen(function*() {
    const sessions = yield* Sessions
    const config = yield* defaultConfig
    const timed = (owner: boolean) =>
      Effect.gen(function*() {
        const started = performance.now()
        yield* sessions.create({
          userId: `admission-${randomUUID()}`,
          deviceId: randomUUID(),
          config,
          // The per-user caps as POST /api/session has them (so both run in a transaction): only the capacity check differs.
          caps: { pendingPerUser: 1_000_000, pendingPerDevice: 1_000_000, openPerUser: 1_000_000, openPerDevice: 1_000_000 },
          ...(owner ? { owner: { instance: "bench-admission", capacity: 1_000_000 } } : {}),
          actor: "bench",
          reason: "start"
        })
        return performance.now() - started
      })
    const withCheck: Array<number> = []
    const without: Array<number> = []
    for (let i = 0; i < ADMISSIONS; i++) {
      withCheck.push(yield* timed(true))
      without.push(yield* timed(false))
    }
    return { withMs: percentile(withCheck, 50), withoutMs: percentile(without, 50) }
  }).pipe(
    Effect.provide(Sessions.layer.pipe(
      Layer.provide(PgClient.layer({ url: Redacted.make(databaseUrl) })),
      Layer.provide(Reactivity.layer),
      Layer.provideMerge(AppConfig.layerFrom({ DATABASE_URL: databaseUrl }))
    )),
    Effect.runPromise
  )

const describe = (name: string, setups: ReadonlyArray<Setup>) =>
  `${name.padEnd(10)} n=${setups.length}: session POST p50 ${
    fmt(percentile(setups.map((s) => s.sessionMs), 50), 1)
  } ms; session POST -> first chunk at the ASR p50 ${fmt(percentile(setups.map((s) => s.firstChunkMs), 50), 1)} ms p95 ${
    fmt(percentile(setups.map((s) => s.firstChunkMs), 95), 1)
  } ms`

export const run = async (): Promise<BenchResult> => {
  const fake = await RemoteFakeAsr.start()
  const templates = (await captureOpusRtp({ payloadType: 111, frameMs: FRAME_MS })).map((c) => c.packet).filter((p) => p.length > 12)
  const prefix = `bench-cluster-${randomUUID().slice(0, 8)}:`
  const shared = { REDIS_KEY_PREFIX: prefix, INSTANCE_TTL_MS: "5000" }
  try {
    return await withService(
      fake.url,
      (a) =>
        withService(fake.url, async (b) => {
          const token = await accessToken(a.base, "bench-cluster")
          const direct: Array<Setup> = []
          const redirected: Array<Setup> = []
          await setup(a.base, a.base, token, fake, templates) // warm-up
          for (let i = 0; i < SETUPS; i++) {
            direct.push(await setup(a.base, a.base, token, fake, templates))
            redirected.push(await setup(a.base, b.base, token, fake, templates))
          }
          const admission = await admissionCost(a.databaseUrl)
          const directP50 = percentile(direct.map((s) => s.firstChunkMs), 50)
          const redirectedP50 = percentile(redirected.map((s) => s.firstChunkMs), 50)
          console.log(describe("direct", direct))
          console.log(describe("redirected", redirected))
          console.log(
            `admission: SessionStore.create p50 ${fmt(admission.withMs)} ms with the capacity check, ${
              fmt(admission.withoutMs)
            } ms without (n=${ADMISSIONS} each)`
          )
          return {
            summary: `cluster direct_setup_p50_ms=${fmt(directP50, 1)} redirected_setup_p50_ms=${fmt(redirectedP50, 1)} admission_check_ms=${
              fmt(admission.withMs - admission.withoutMs)
            } ratio=${fmt(directP50 / redirectedP50)} instances=2`
          }
        }, (base) => ({ ...shared, PUBLIC_URL: base, DATABASE_URL: a.databaseUrl, RTC_PORT: "46000", RTC_MIN_PORT: "46100", RTC_MAX_PORT: "47999" })),
      (base) => ({
        ...shared,
        PUBLIC_URL: base
      })
    )
  } finally {
    fake.stop()
  }
}
