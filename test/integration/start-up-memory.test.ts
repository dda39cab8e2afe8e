import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { type ServiceProcess, startService, waitForOk } from "../support/process.ts"

/**
 * The service, started as `npm start` starts it (its flags, its compile cache), gives back the
 * memory start-up took once it is up: one memory-reducing collection, logged at debug level with
 * the RSS before and after.
 */

const work = mkdtempSync(join(tmpdir(), "auralink-start-up-memory-"))
let service: ServiceProcess | undefined
afterAll(async () => {
  service?.child.kill("SIGTERM")
  await service?.exited
  rmSync(work, { recursive: true, force: true })
})

interface Released {
  readonly ms: number
  readonly rssBeforeMb: number
  readonly rssAfterMb: number
}

const released = (output: string): Released | undefined => {
  for (const line of output.split("\n")) {
    if (!line.includes("\"start_up_gc\"")) continue
    const parsed: unknown = JSON.parse(line)
    if (typeof parsed !== "object" || parsed === null) continue
    const { ms, rssBeforeMb, rssAfterMb } = {
      ms: Reflect.get(parsed, "ms"),
      rssBeforeMb: Reflect.get(parsed, "rssBeforeMb"),
      rssAfterMb: Reflect.get(parsed, "rssAfterMb")
    }
    if (typeof ms === "number" && typeof rssBeforeMb === "number" && typeof rssAfterMb === "number") return { ms, rssBeforeMb, rssAfterMb }
  }
  return undefined
}

const vmRssMb = (pid: number): number => {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  return Number(match?.[1]) / 1024
}

describe("start-up memory", () => {
  it("is released once the service has started: RSS lower after the collection, and stays there", async () => {
    service = await startService({ DATA_DIR: join(work, "data"), LOG_LEVEL: "debug" })
    await waitForOk(`${service.httpUrl}/health`, 60_000)
    const deadline = Date.now() + 10_000
    let found = released(service.output())
    while (found === undefined && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      found = released(service.output())
    }
    expect(found, service.output()).toBeDefined()
    if (found === undefined) return
    expect(found.rssAfterMb).toBeLessThan(found.rssBeforeMb)
    const pid = service.child.pid
    expect(pid).toBeDefined()
    // The process's own reading a moment later: the pages stayed released (within 10 MB of the log's figure).
    if (pid !== undefined) expect(vmRssMb(pid)).toBeLessThan(found.rssAfterMb + 10)
    expect(service.output()).not.toMatch(/"level":"(warn|error)"[^\n]*start-up memory/)
  })
})
