import { Effect, Exit, Scope } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { JWT_SECRET, PROVISIONING_KEY } from "../support/auth.ts"
import { FakeLiveKit } from "../support/fake-livekit.ts"
import { freshDatabase } from "../support/postgres.ts"
import { deleteKeys, REDIS_URL, runPrefix } from "../support/redis.ts"
import { type ServiceProcess, startService, waitForOk } from "../support/process.ts"

const INTERVAL_MS = 600
const API_KEY = "lease-test-key"
const API_SECRET = "lease-test-secret-0123456789abcdef"

const cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step()
})

const roomSync = async (service: ServiceProcess): Promise<Record<string, unknown>> => {
  const response = await fetch(`${service.httpUrl}/status`, { headers: { "x-provisioning-key": PROVISIONING_KEY } })
  const body: unknown = await response.json()
  const section = typeof body === "object" && body !== null && "room_sync" in body ? body.room_sync : undefined
  return typeof section === "object" && section !== null ? Object.fromEntries(Object.entries(section)) : {}
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe("room sync across two service processes on one Redis", () => {
  it("exactly one instance syncs; after it is killed the other takes over within two intervals", async () => {
    const fake = new FakeLiveKit({ apiKey: API_KEY, apiSecret: API_SECRET })
    await fake.start()
    cleanup.push(() => fake.stop())
    fake.seed(3, 2)
    const scope = Effect.runSync(Scope.make())
    cleanup.push(() => Effect.runPromise(Scope.close(scope, Exit.void)))
    const databaseUrl = await Effect.runPromise(Scope.provide(freshDatabase, scope))
    const prefix = `${runPrefix()}:`
    cleanup.push(() => deleteKeys(`${prefix}*`))
    const env = {
      DATABASE_URL: databaseUrl,
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      JWT_SECRET,
      AUTH_PROVISIONING_KEY: PROVISIONING_KEY,
      WEBRTC_SERVER_URL: fake.url,
      WEBRTC_API_KEY: API_KEY,
      WEBRTC_API_SECRET: API_SECRET,
      ROOM_SYNC_INTERVAL_MS: String(INTERVAL_MS),
      MEDIASOUP_WORKERS: "1"
    }
    const a = await startService({ ...env, DATA_DIR: mkdtempSync(join(tmpdir(), "lease-a-")) })
    cleanup.push(() => a.child.kill("SIGKILL"))
    await waitForOk(`${a.httpUrl}/health`, 30_000)
    const b = await startService({ ...env, DATA_DIR: mkdtempSync(join(tmpdir(), "lease-b-")) })
    cleanup.push(() => b.child.kill("SIGKILL"))
    await waitForOk(`${b.httpUrl}/health`, 30_000)
    await sleep(INTERVAL_MS * 2)

    // Exactly one holds the lease and syncs: ListRooms comes once per interval, not twice.
    const [sa, sb] = await Promise.all([roomSync(a), roomSync(b)])
    expect([sa["this_instance_syncs"], sb["this_instance_syncs"]].filter((held) => held === true)).toHaveLength(1)
    expect(sa["lease_holder"]).toBe(sb["lease_holder"])
    expect(sa["active_rooms"]).toBe(3)
    const callsBefore = fake.calls.get("ListRooms") ?? 0
    const windowMs = INTERVAL_MS * 5
    await sleep(windowMs)
    const syncs = (fake.calls.get("ListRooms") ?? 0) - callsBefore
    expect(syncs).toBeGreaterThanOrEqual(4)
    expect(syncs).toBeLessThanOrEqual(6)

    const [holder, other] = sa["this_instance_syncs"] === true ? [a, b] : [b, a]
    holder.child.kill("SIGKILL")
    const killedAt = performance.now()
    await holder.exited
    // The survivor holds the lease and has synced: a room added now appears through it.
    await fake.addRoom("after-failover")
    let tookMs = Number.POSITIVE_INFINITY
    while (performance.now() - killedAt < INTERVAL_MS * 4) {
      const section = await roomSync(other)
      if (section["this_instance_syncs"] === true && section["active_rooms"] === 4) {
        tookMs = performance.now() - killedAt
        break
      }
      await sleep(20)
    }
    expect(tookMs).toBeLessThanOrEqual(INTERVAL_MS * 2)
  }, 90_000)
})
