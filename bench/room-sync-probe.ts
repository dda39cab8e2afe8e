// Instruments for bench/room-sync.bench.ts: a keep-alive HTTP client, Prometheus text samples, the
// sync-cycle watcher (the store's cluster-wide sync counter, then the histogram deltas) and the bare
// Redis write the cycle is compared with.
import type { Redis } from "ioredis"
import { Agent } from "node:http"
import { performance } from "node:perf_hooks"
import { setTimeout as sleep } from "node:timers/promises"
import { expectStatus, httpClient, type Reply } from "./support.ts"

// ---- HTTP -----------------------------------------------------------------------------------

export const agent = new Agent({ keepAlive: true, maxSockets: 16 })

/** One request on a pooled keep-alive connection. */
export const call = httpClient(agent)

/** A string field of a JSON object reply. */
export const field = (reply: Reply, name: string): string => {
  const value: unknown = JSON.parse(reply.body)
  const found: unknown = typeof value === "object" && value !== null ? Reflect.get(value, name) : undefined
  if (typeof found === "string") return found
  throw new Error(`reply has no string ${name}: ${reply.status} ${reply.body.slice(0, 200)}`)
}

// ---- Prometheus text ------------------------------------------------------------------------

/** The value of sample `name` whose labels include every `labels` pair (0 when absent). */
export const sample = (text: string, name: string, labels: Record<string, string> = {}): number => {
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)/.exec(line)
    if (match?.[1] !== name) continue
    const given = match[2] ?? ""
    if (Object.entries(labels).every(([k, v]) => given.includes(`${k}="${v}"`))) return Number(match[3])
  }
  return 0
}

const HISTOGRAM = "auralink_room_sync_duration_seconds"

export interface SyncTotals {
  readonly count: number
  readonly seconds: number
}

/** The sync-duration histogram's count and sum, summed over the instances (only the lease holder syncs). */
export const syncTotals = async (urls: ReadonlyArray<string>): Promise<SyncTotals> => {
  const texts = await Promise.all(urls.map(async (url) => expectStatus(await call(`${url}/metrics`, "GET"), 200, "metrics").body))
  return {
    count: texts.reduce((n, t) => n + sample(t, `${HISTOGRAM}_count`), 0),
    seconds: texts.reduce((n, t) => n + sample(t, `${HISTOGRAM}_sum`), 0)
  }
}

// ---- sync cycles ----------------------------------------------------------------------------

export interface Cycle {
  readonly ms: number
  /** Syncs that ended since the last one seen (1 unless the watcher missed one). */
  readonly syncs: number
}

/**
 * Waits for syncs to end, read off the store's cluster-wide counters (one cheap GET every 5 ms,
 * no load on the services); after each, one /metrics scrape per instance gives the cycle's own
 * duration as the histogram's delta. Scrapes land right after a sync, never during one.
 */
export const cycleWatcher = async (redis: Redis, statsPrefix: string, urls: ReadonlyArray<string>) => {
  const counts = async () => {
    const [ok, failed] = await redis.mget(`${statsPrefix}success`, `${statsPrefix}failure`)
    return { ok: Number(ok ?? 0), failed: Number(failed ?? 0) }
  }
  let seen = await counts()
  let totals = await syncTotals(urls)
  return {
    /** The next sync to end (failing on a failed sync or none within `timeoutMs`). */
    next: async (timeoutMs: number): Promise<Cycle> => {
      const deadline = performance.now() + timeoutMs
      for (;;) {
        const now = await counts()
        if (now.failed !== seen.failed) throw new Error(`a room sync failed (${now.failed - seen.failed} failures)`)
        if (now.ok !== seen.ok) {
          seen = now
          break
        }
        if (performance.now() > deadline) {
          throw new Error(`no room sync ended within ${timeoutMs} ms (one that outlasts half the interval is interrupted and counted nowhere)`)
        }
        await sleep(5)
      }
      const after = await syncTotals(urls)
      const cycle = { ms: (after.seconds - totals.seconds) * 1000, syncs: after.count - totals.count }
      totals = after
      return cycle
    },
    syncsSeen: () => seen.ok
  }
}

// ---- the baseline: the same state, written bare ----------------------------------------------

export interface StoredState {
  /** Room name -> the RoomRecord JSON the service wrote. */
  readonly rooms: Record<string, string>
  /** Room name -> identity -> the ParticipantRecord JSON the service wrote. */
  readonly participants: ReadonlyMap<string, Record<string, string>>
}

/** What the service keeps under `<prefix>rooms:` (index and each room's participants), read back verbatim. */
export const readStoredState = async (redis: Redis, roomsPrefix: string): Promise<StoredState> => {
  const rooms = await redis.hgetall(`${roomsPrefix}index`)
  const names = Object.keys(rooms)
  const pipeline = redis.pipeline()
  for (const name of names) pipeline.hgetall(`${roomsPrefix}p:${encodeURIComponent(name)}`)
  const replies = (await pipeline.exec()) ?? []
  const participants = new Map<string, Record<string, string>>()
  names.forEach((name, i) => {
    const [error, value] = replies[i] ?? [new Error("no reply"), null]
    if (error !== null || typeof value !== "object" || value === null) throw new Error(`HGETALL of ${name}'s participants failed: ${String(error)}`)
    participants.set(name, Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)])))
  })
  return { rooms, participants }
}

export const stateSize = (state: StoredState) => {
  const participants = [...state.participants.values()].flatMap((p) => Object.values(p))
  const bytes = [...Object.values(state.rooms), ...participants].reduce((n, json) => n + Buffer.byteLength(json), 0)
  return { rooms: Object.keys(state.rooms).length, participants: participants.length, bytes }
}

/**
 * Writes `state` under `prefix` in one pipeline and times it: one multi-field HSET of every room
 * record into `index`, one per room of its participant records into `p:<room>` (`perRecord`: one
 * single-field HSET per record instead). The keys are deleted first, untimed: every write creates them.
 */
export const bareWrite = async (redis: Redis, prefix: string, state: StoredState, perRecord = false): Promise<number> => {
  const keys = [`${prefix}index`, ...[...state.participants.keys()].map((room) => `${prefix}p:${encodeURIComponent(room)}`)]
  await redis.del(...keys)
  const started = performance.now()
  const pipeline = redis.pipeline()
  const put = (key: string, fields: Record<string, string>) => {
    if (!perRecord) pipeline.hset(key, fields)
    else for (const [name, value] of Object.entries(fields)) pipeline.hset(key, name, value)
  }
  put(`${prefix}index`, state.rooms)
  for (const [room, fields] of state.participants) put(`${prefix}p:${encodeURIComponent(room)}`, fields)
  const replies = (await pipeline.exec()) ?? []
  const ms = performance.now() - started
  const failed = replies.find(([error]) => error !== null)
  if (failed !== undefined) throw new Error(`baseline HSET failed: ${String(failed[0])}`)
  return ms
}

// ---- figures --------------------------------------------------------------------------------

export const mean = (values: ReadonlyArray<number>): number => values.reduce((a, b) => a + b, 0) / values.length

export const fixed = (value: number, digits = 2): string => Number.isFinite(value) ? value.toFixed(digits) : "NaN"
