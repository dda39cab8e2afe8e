// Room synchronization at the seed's load target: 1,000 participants in 100 rooms (the fake LiveKit
// server's `seed`), two service instances on one Redis prefix, the sync every SYNC_INTERVAL_MS.
// cycle_ms: the mean sync cycle (the service's own histogram, per cycle) when nothing changed;
// first_cycle_ms: the first cycle that writes all 1,000 participants (100 rooms started).
// baseline_cycle_ms: the same state (the JSON the service wrote, read back) written bare: one
// ioredis pipeline of 101 multi-field HSETs, timed between the steady cycles; ratio = baseline / cycle.
// propagation_p95_ms: a signed participant_joined webhook delivered to instance A until
// GET /api/rooms/:name on instance B (polled every 2 ms from the delivery on) lists the participant.
// read_p50/p99_ms, cache_hit_pct: GET /api/participants/:identity on B, Zipf-distributed identities.
// During those two phases the bench holds the sync lease itself, so no sync runs alongside.
// Knobs: BENCH_SYNC_INTERVAL_MS (4000: a full sync must end within 3/4 of it on a busy 2-core
// machine), BENCH_STEADY_CYCLES (8), BENCH_READS (10000: every first read of an identity misses, so the hit rate
// grows with reads per identity); about 2 minutes in all.
import { Effect } from "effect"
import { performance } from "node:perf_hooks"
import { setTimeout as sleep } from "node:timers/promises"
import { AppConfig } from "../src/layers/Config.ts"
import { TokenSigner } from "../src/layers/Tokens.ts"
import { SEED_CAPABILITIES } from "../test/support/livekit.ts"
import { JWT_SECRET, PROVISIONING_KEY, type Rig, startRig } from "./room-sync-rig.ts"
import { bareWrite, call, type Cycle, cycleWatcher, field, fixed, mean, readStoredState, sample, stateSize } from "./room-sync-probe.ts"
import { type BenchResult, expectStatus, percentile } from "./support.ts"

const ROOMS = 100
const PER_ROOM = 10
const SYNC_INTERVAL_MS = Number(process.env["BENCH_SYNC_INTERVAL_MS"] ?? 4000)
const FULL_WRITES = 3
const STEADY_CYCLES = Number(process.env["BENCH_STEADY_CYCLES"] ?? 8)
const PROPAGATION_SAMPLES = 200
const READS = Number(process.env["BENCH_READS"] ?? 10_000)
const POLL_MS = 2
const CYCLE_TIMEOUT_MS = SYNC_INTERVAL_MS * 3

const spread = (values: ReadonlyArray<number>) =>
  `min ${fixed(Math.min(...values))} / p50 ${fixed(percentile(values, 50))} / mean ${fixed(mean(values))} / max ${
    fixed(Math.max(...values))
  } ms (n=${values.length})`

/** A device of the rig's service and an operator-scoped access token for it, signed with the service's key. */
const operatorToken = async (rig: Rig): Promise<Record<string, string>> => {
  const userId = "bench-operator"
  const device = expectStatus(
    await call(`${rig.a.httpUrl}/api/auth/devices`, "POST", { "x-provisioning-key": PROVISIONING_KEY }, JSON.stringify({ userId, name: "bench" })),
    201,
    "register device"
  )
  const signed = await Effect.runPromise(
    TokenSigner.use((s) => s.sign({ userId, deviceId: field(device, "deviceId"), scope: "session operator" })).pipe(
      Effect.provide(TokenSigner.layer),
      Effect.provide(AppConfig.layerFrom({ JWT_SECRET }))
    )
  )
  return { authorization: `Bearer ${signed.token}` }
}

// ---- sync cycles --------------------------------------------------------------------------

const identities = (roomsPrefix: string, rig: Rig) => async () => {
  const pipeline = rig.redis.pipeline()
  for (let i = 0; i < ROOMS; i++) pipeline.hlen(`${roomsPrefix}p:room-${i}`)
  const replies = (await pipeline.exec()) ?? []
  return replies.reduce((n, [, value]) => n + (typeof value === "number" ? value : 0), 0)
}

const cycles = async (rig: Rig) => {
  const roomsPrefix = `${rig.prefix}rooms:`
  const watch = await cycleWatcher(rig.redis, `${roomsPrefix}stats:`, [rig.a.httpUrl, rig.b.httpUrl])
  const stored = identities(roomsPrefix, rig)
  const one = async (what: string): Promise<number> => {
    const cycle: Cycle = await watch.next(CYCLE_TIMEOUT_MS)
    if (cycle.syncs !== 1) console.log(`  (${what}: ${cycle.syncs} syncs ended between two looks; their mean counted)`)
    return cycle.ms / Math.max(1, cycle.syncs)
  }
  // Warm-up on an empty LiveKit: connections open, code paths compiled.
  await one("warm-up")
  const metricsA = await call(`${rig.a.httpUrl}/metrics`, "GET")
  const syncing = sample(metricsA.body, "auralink_room_sync_duration_seconds_count") > 0 ? "A" : "B"

  // Each change right after a sync ended, so the next sync sees all of it.
  const full: Array<number> = []
  const removal: Array<number> = []
  for (let round = 0; round < FULL_WRITES; round++) {
    if (round > 0) {
      for (let i = 0; i < ROOMS; i++) await rig.fake.removeRoom(`room-${i}`)
      removal.push(await one("removal"))
      if ((await stored()) !== 0) throw new Error("participants left after the removal cycle")
    }
    rig.fake.seed(ROOMS, PER_ROOM)
    full.push(await one("full write"))
    const kept = await stored()
    if (kept !== ROOMS * PER_ROOM) throw new Error(`after a full sync the store holds ${kept} participants, not ${ROOMS * PER_ROOM}`)
  }

  // Steady state; the baseline runs in the idle time right after each cycle, so both see the same machine.
  const state = await readStoredState(rig.redis, roomsPrefix)
  const baselinePrefix = `${rig.prefix}baseline:`
  for (let i = 0; i < 3; i++) await bareWrite(rig.redis, baselinePrefix, state)
  const steady: Array<number> = []
  const baseline: Array<number> = []
  const perRecord: Array<number> = []
  for (let i = 0; i < STEADY_CYCLES; i++) {
    steady.push(await one("steady"))
    baseline.push(await bareWrite(rig.redis, baselinePrefix, state))
    perRecord.push(await bareWrite(rig.redis, baselinePrefix, state, true))
  }
  if ((await stored()) !== ROOMS * PER_ROOM) throw new Error("the steady cycles changed the participants kept")
  // From here on the bench holds the sync lease: no sync runs during the webhook and read phases.
  await rig.redis.set(`${roomsPrefix}lease:sync`, "bench", "PX", 600_000)
  return { syncing, full, removal, steady, baseline, perRecord, size: stateSize(state), syncsSeen: watch.syncsSeen, roomsPrefix }
}

// ---- webhook propagation ------------------------------------------------------------------

const lists = (body: string, identity: string): boolean => {
  const room: unknown = JSON.parse(body)
  const participants: unknown = typeof room === "object" && room !== null ? Reflect.get(room, "participants") : undefined
  return Array.isArray(participants) && participants.some((p: unknown) => typeof p === "object" && p !== null && Reflect.get(p, "identity") === identity)
}

/** One join: delivered to A while B is polled from the same instant. */
const propagation = async (rig: Rig, auth: Record<string, string>, k: number) => {
  const room = `room-${k % ROOMS}`
  const identity = `late-${k}`
  await rig.fake.join(room, identity)
  const signed = await rig.fake.signedWebhook({ event: "participant_joined", room, identity })
  const started = performance.now()
  const delivered = rig.fake.deliver(`${rig.a.httpUrl}/api/livekit/webhook`, signed).then((status) => {
    if (status !== 200) throw new Error(`webhook to A: ${status}`)
    return performance.now() - started
  })
  for (;;) {
    const polled = performance.now()
    const reply = await call(`${rig.b.httpUrl}/api/rooms/${room}`, "GET", auth)
    if (reply.status === 200 && lists(reply.body, identity)) return { visibleMs: performance.now() - started, ackMs: await delivered }
    if (polled - started > 5_000) throw new Error(`${identity} not visible on B within 5 s (last ${reply.status})`)
    const wait = POLL_MS - (performance.now() - polled)
    if (wait > 0) await sleep(wait)
  }
}

// ---- participant-state reads --------------------------------------------------------------

/** mulberry32: the same read mix every run. */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** `count` indices in [0, n), Zipf(s = 1): a few identities read often, most now and then. */
const zipf = (n: number, count: number): Array<number> => {
  const weights = Array.from({ length: n }, (_, i) => 1 / (i + 1))
  const total = weights.reduce((a, b) => a + b, 0)
  const cumulative: Array<number> = []
  weights.reduce((sum, w) => (cumulative.push((sum + w) / total), sum + w), 0)
  const next = random(13)
  return Array.from({ length: count }, () => {
    const r = next()
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if ((cumulative[mid] ?? 1) < r) lo = mid + 1
      else hi = mid
    }
    return lo
  })
}

const readCounts = async (url: string) => {
  const text = (await call(`${url}/metrics`, "GET")).body
  const name = "auralink_participant_state_reads_total"
  return { hit: sample(text, name, { result: "hit" }), miss: sample(text, name, { result: "miss" }) }
}

/** Capabilities written for every seeded participant on A, then read on B; undefined when the endpoint is not there. */
const participantReads = async (rig: Rig, auth: Record<string, string>) => {
  const all = Array.from({ length: ROOMS * PER_ROOM }, (_, n) => `user-${Math.floor(n / PER_ROOM)}-${n % PER_ROOM}`)
  const put = (identity: string) => call(`${rig.a.httpUrl}/api/participants/${identity}/capabilities`, "PUT", auth, JSON.stringify(SEED_CAPABILITIES))
  const first = await put(all[0] ?? "")
  if (first.status === 404) return undefined
  expectStatus(first, 200, "PUT capabilities")
  const next = { i: 1 }
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next.i < all.length) expectStatus(await put(all[next.i++] ?? ""), 200, "PUT capabilities")
  }))
  const order = zipf(all.length, READS)
  const before = await readCounts(rig.b.httpUrl)
  const seen = new Set<number>()
  const firstReads: Array<number> = []
  const repeats: Array<number> = []
  for (const index of order) {
    const started = performance.now()
    expectStatus(await call(`${rig.b.httpUrl}/api/participants/${all[index] ?? ""}`, "GET", auth), 200, "GET participant")
    const ms = performance.now() - started
    if (seen.has(index)) repeats.push(ms)
    else firstReads.push(ms)
    seen.add(index)
  }
  const after = await readCounts(rig.b.httpUrl)
  const hits = after.hit - before.hit
  const misses = after.miss - before.miss
  return { all: [...firstReads, ...repeats], firstReads, repeats, distinct: seen.size, hits, misses, hitPct: (hits / (hits + misses)) * 100 }
}

// ---- the run ------------------------------------------------------------------------------

export const run = async (): Promise<BenchResult> => {
  const started = performance.now()
  const rig = await startRig(SYNC_INTERVAL_MS)
  try {
    console.log(
      `instances: A ${rig.a.httpUrl}, B ${rig.b.httpUrl}; Redis prefix ${rig.prefix}; sync every ${SYNC_INTERVAL_MS} ms (ready after ${
        fixed((performance.now() - started) / 1000, 1)
      } s)`
    )
    const c = await cycles(rig)
    console.log(`syncing instance: ${c.syncing}; state: ${c.size.rooms} rooms, ${c.size.participants} participants, ${c.size.bytes} bytes of JSON`)
    console.log(
      `full cycles (100 rooms started, 1000 participants written): first ${fixed(c.full[0] ?? Number.NaN)} ms, all ${c.full.map((v) => fixed(v)).join(", ")} ms`
    )
    console.log(`removal cycles (100 rooms finished, 1000 participants leave): ${c.removal.map((v) => fixed(v)).join(", ")} ms`)
    console.log(`steady cycles (nothing changed): ${spread(c.steady)}`)
    console.log(`baseline, pipelined multi-field HSETs (1 + ${c.size.rooms}): ${spread(c.baseline)}`)
    console.log(`baseline variant, pipelined HSET per record (${c.size.rooms + c.size.participants}): ${spread(c.perRecord)}`)

    const auth = await operatorToken(rig)
    const syncsBefore = c.syncsSeen()
    const samples: Array<{ visibleMs: number; ackMs: number }> = []
    for (let k = 0; k < 10; k++) await propagation(rig, auth, PROPAGATION_SAMPLES + k) // warm-up
    for (let k = 0; k < PROPAGATION_SAMPLES; k++) samples.push(await propagation(rig, auth, k))
    const visible = samples.map((s) => s.visibleMs)
    const acks = samples.map((s) => s.ackMs)
    console.log(
      `propagation webhook -> A -> visible on B (n=${visible.length}): p50 ${fixed(percentile(visible, 50))} p95 ${fixed(percentile(visible, 95))} ` +
        `p99 ${fixed(percentile(visible, 99))} max ${fixed(Math.max(...visible))} ms; A's 200 after p50 ${fixed(percentile(acks, 50))} p95 ${
          fixed(percentile(acks, 95))
        } ms`
    )

    const reads = await participantReads(rig, auth)
    if (reads === undefined) console.log("participant state: PUT /api/participants/:identity/capabilities is 404 on this branch: no read figures")
    else {
      console.log(
        `participant state: ${ROOMS * PER_ROOM} written on A; ${READS} reads on B, Zipf(1) over ${ROOMS * PER_ROOM} identities (${reads.distinct} distinct): ` +
          `p50 ${fixed(percentile(reads.all, 50))} p99 ${fixed(percentile(reads.all, 99))} ms; first reads p50 ${
            fixed(percentile(reads.firstReads, 50))
          } ms, ` +
          `repeats p50 ${fixed(percentile(reads.repeats, 50))} ms; cache ${reads.hits} hits, ${reads.misses} misses`
      )
    }
    const syncsAfter = Number((await rig.redis.get(`${c.roomsPrefix}stats:success`)) ?? 0)
    console.log(`syncs while the bench held the lease: ${syncsAfter - syncsBefore}; run time ${fixed((performance.now() - started) / 1000, 1)} s`)

    const cycleMs = mean(c.steady)
    const firstMs = c.full[0] ?? Number.NaN
    const baselineMs = mean(c.baseline)
    const figures = [
      `participants=${ROOMS * PER_ROOM}`,
      `rooms=${ROOMS}`,
      `cycle_ms=${fixed(cycleMs)}`,
      `first_cycle_ms=${fixed(firstMs)}`,
      `baseline_cycle_ms=${fixed(baselineMs)}`,
      `ratio=${fixed(baselineMs / cycleMs, 3)}`,
      `first_ratio=${fixed(baselineMs / firstMs, 3)}`,
      `propagation_p95_ms=${fixed(percentile(visible, 95))}`,
      `read_p50_ms=${fixed(reads === undefined ? Number.NaN : percentile(reads.all, 50))}`,
      `read_p99_ms=${fixed(reads === undefined ? Number.NaN : percentile(reads.all, 99))}`,
      `cache_hit_pct=${fixed(reads?.hitPct ?? Number.NaN, 1)}`
    ]
    return { summary: `room-sync ${figures.join(" ")}` }
  } catch (error) {
    console.error(`instance A output (tail):\n${rig.a.output().slice(-2000)}\ninstance B output (tail):\n${rig.b.output().slice(-2000)}`)
    throw error
  } finally {
    await rig.close()
  }
}
