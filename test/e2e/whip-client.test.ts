import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { sessionRecordings } from "../support/media.ts"
import { type ServiceProcess, startService, waitForOk } from "../support/process.ts"
import { finalizedWav } from "../support/recording.ts"
import { authEnv, signedInClient } from "../support/service-client.ts"
import { dominantFrequency } from "../support/tones.ts"
import { AUDIO_TONE_PIPELINE, buildStub, createWhipNetns, runWhipClient, VIDEO_BALL_PIPELINE, type WhipNetns, whipServiceEnv } from "../support/whip-client.ts"

// Debian's whip-client (GStreamer webrtcbin), unmodified, publishes to the real process from a private
// network namespace: 201 + answer, trickle PATCH 204, media flows, SIGINT -> DELETE 200, the recording is the tone.

const work = mkdtempSync(join(tmpdir(), "auralink-whip-client-"))
const dataDir = join(work, "data")
let netns: WhipNetns | undefined
let service: ServiceProcess | undefined
let baseUrl = ""
let stubDir = ""

beforeAll(async () => {
  stubDir = await buildStub()
  netns = await createWhipNetns()
  service = await startService({ ...authEnv, ...whipServiceEnv(netns), DATA_DIR: dataDir })
  baseUrl = `http://${netns.hostIp}:${new URL(service.httpUrl).port}`
  const started = service
  await waitForOk(`${baseUrl}/ready`, 60_000).catch((error: unknown) => {
    throw new Error(`the service did not get ready on ${baseUrl}:\n${started.output()}`, { cause: error })
  })
}, 90_000)

afterAll(async () => {
  const child = service?.child
  if (child !== undefined && child.exitCode === null) {
    child.kill("SIGTERM")
    await Promise.race([service?.exited, new Promise((resolve) => setTimeout(resolve, 10_000))])
    if (child.exitCode === null) child.kill("SIGKILL")
  }
  await netns?.close()
  rmSync(work, { recursive: true, force: true })
})

const logLines = (): Array<Record<string, unknown>> =>
  (service?.output() ?? "").split("\n").filter((l) => l.startsWith("{")).map((l): Record<string, unknown> => {
    const parsed: unknown = JSON.parse(l)
    return typeof parsed === "object" && parsed !== null ? Object.fromEntries(Object.entries(parsed)) : {}
  })

/** HTTP statuses the service logged for `method` on the session's resource. */
const resourceStatuses = (method: string, sessionId: string): Array<unknown> =>
  logLines()
    .filter((l) => l["method"] === method && String(l["path"]).startsWith(`/whip/sessions/${sessionId}/`))
    .map((l) => l["status"])

const wavRate = (file: string): number => readFileSync(file).readUInt32LE(24)

/** Opus RTP packets the service found missing (sequence gaps) or concealed, so far. */
const rtpGaps = async (): Promise<number> => {
  const text = await (await fetch(`${baseUrl}/metrics`)).text()
  // A counter is listed (HELP) from the start; its rtp series once it first counts (absent: 0).
  const value = (name: string) =>
    text.includes(`# HELP ${name} `) ? Number(new RegExp(`^${name}\\{path="rtp"\\} (\\S+)$`, "m").exec(text)?.[1] ?? "0") : Number.NaN
  return value("auralink_audio_loss_total") + value("auralink_audio_concealed_total")
}

describe.each([
  { name: "audio", video: undefined },
  { name: "audio+video", video: VIDEO_BALL_PIPELINE }
])("whip-client publishing $name", ({ video }) => {
  it("connects, trickles, records the 440 Hz tone and ends the session with DELETE", async () => {
    if (netns === undefined) throw new Error("beforeAll did not finish")
    const client = await signedInClient(baseUrl)
    const gapsBefore = await rtpGaps()
    expect(Number.isFinite(gapsBefore), "the loss counters are exported").toBe(true)
    const whip = await runWhipClient({
      url: `${baseUrl}/whip`,
      token: client.token,
      nsName: netns.nsName,
      stubDir,
      audioPipeline: AUDIO_TONE_PIPELINE,
      ...(video === undefined ? {} : { videoPipeline: video })
    })
    const output = await whip.waitForOutput(/PeerConnection connected/, 15_000)
    const sessionId = /\/whip\/sessions\/([^/\s]+)\//.exec(output)?.[1] ?? ""
    expect(sessionId, output).not.toBe("")
    await new Promise((resolve) => setTimeout(resolve, 2_000))

    const exit = await whip.stop()
    expect(exit, whip.output()).toEqual({ code: 0, signal: null })
    expect([...new Set(resourceStatuses("PATCH", sessionId))]).toEqual([204])
    await expect.poll(() => resourceStatuses("DELETE", sessionId), { timeout: 5_000 }).toEqual([200])

    await expect.poll(() => sessionRecordings(dataDir, sessionId).some((f) => finalizedWav(f) !== undefined), { timeout: 10_000 }).toBe(true)
    const [file = ""] = sessionRecordings(dataDir, sessionId)
    const samples = finalizedWav(file) ?? new Int16Array()
    expect(samples.length / wavRate(file)).toBeGreaterThan(1.5)
    expect(Math.abs(dominantFrequency(samples, wavRate(file)) - 440)).toBeLessThan(10)
    // No gaps: not one packet missing or concealed in the session's RTP.
    expect(await rtpGaps()).toBe(gapsBefore)
  })
})
