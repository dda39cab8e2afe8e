import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Browser } from "playwright-core"
import { afterAll, describe, expect, it } from "vitest"
import { launchChromium } from "../support/chromium.ts"
import { type ServiceProcess, startService, waitForOk } from "../support/process.ts"
import { sessionRecordings } from "../support/media.ts"
import { finalizedWav } from "../support/recording.ts"
import { checkToneSequence, concatSamples, DEFAULT_TONE_MS, DEFAULT_TONES, toneSequence, wavFile } from "../support/tones.ts"

/**
 * The README's first run, exactly: the real process (`node src/main.ts`, what `npm start` runs) with
 * no configuration but a data directory and free ports, then the README's demo steps in headless
 * Chromium on the same machine (its fake microphone plays a WAV of tones): open the URL the log
 * prints, paste the provisioning key the log prints, click "Start: Opus over WebRTC", then "Stop";
 * the recording must be written under DATA_DIR/recordings and follow the tones.
 */

const WAV_RATE = 48_000
const LEAD_MS = 600
const PLAY_MS = LEAD_MS + DEFAULT_TONES.length * DEFAULT_TONE_MS + 600

const work = mkdtempSync(join(tmpdir(), "auralink-first-run-"))
const wavPath = join(work, "tones.wav")
const silence = (ms: number) => new Int16Array(Math.round((ms * WAV_RATE) / 1000))
writeFileSync(wavPath, wavFile(concatSamples([silence(LEAD_MS), toneSequence({ sampleRate: WAV_RATE }), silence(600)]), WAV_RATE))

let service: ServiceProcess | undefined
let browser: Browser | undefined
afterAll(async () => {
  await browser?.close()
  const child = service?.child
  if (child !== undefined && child.exitCode === null) {
    child.kill("SIGTERM")
    await Promise.race([service?.exited, new Promise((resolve) => setTimeout(resolve, 10_000))])
    if (child.exitCode === null) child.kill("SIGKILL")
  }
  rmSync(work, { recursive: true, force: true })
})

const logMessages = (text: string): Array<string> =>
  text.split("\n").filter((l) => l.startsWith("{")).map((l) => {
    const parsed: unknown = JSON.parse(l)
    return typeof parsed === "object" && parsed !== null && "msg" in parsed ? String(parsed.msg) : ""
  })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const until = async (check: () => Promise<boolean> | boolean, what: string, ms: number, detail: () => string = () => "") => {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}\n${detail()}`)
    await sleep(100)
  }
}

describe("first run (README): npm start with no configuration, then the demo", () => {
  it("Chromium on the same machine streams Opus over WebRTC and the recording is written", async () => {
    const dataDir = join(work, "data")
    // Nothing about media or provisioning: only where to keep data (startService picks free HTTP/gRPC ports on 127.0.0.1).
    service = await startService({ DATA_DIR: dataDir })
    const output = service.output
    await waitForOk(`${service.httpUrl}/ready`, 30_000)

    // The two first-run lines: the media address announced, and the provisioning key with the demo's URL.
    const messages = logMessages(output())
    expect(messages.some((m) => m.startsWith("media: announcing 127.0.0.1") && m.includes("MEDIASOUP_ANNOUNCED_IP"))).toBe(true)
    const keyLines = messages.filter((m) => m.startsWith("development provisioning key"))
    expect(keyLines).toHaveLength(1)
    const match = /: (\S+) - paste it into the demo at (\S+)$/.exec(keyLines[0] ?? "")
    const key = match?.[1] ?? ""
    const demoUrl = match?.[2] ?? ""
    expect(key.length).toBeGreaterThanOrEqual(32)
    expect(demoUrl).toBe(`http://localhost:${new URL(service.httpUrl).port}/demo`)

    browser = await launchChromium(wavPath)
    const page = await (await browser.newContext()).newPage()
    const log: Array<string> = []
    page.on("console", (message) => log.push(`${message.type()}: ${message.text()}`))
    page.on("pageerror", (error) => log.push(`pageerror: ${error.message}`))
    const text = async (id: string) => (await page.textContent(`#${id}`))?.trim() ?? ""
    const detail = () => `page log:\n${log.join("\n")}\nserver log:\n${output().slice(-4000)}`

    // README: open the URL, paste the key, click "Start: Opus over WebRTC".
    await page.goto(demoUrl)
    await page.fill("#provisioning-key", key)
    await page.click("#start-webrtc")
    await until(async () => (await text("state")) === "active", "the session to become active", 20_000, detail)
    await until(async () => /^[1-9]\d* packets at the server/.test(await text("acked")), "RTP packets acknowledged by the server", 20_000, detail)
    const sessionId = await text("session")
    expect(sessionId).toMatch(/^[0-9a-f-]{36}$/)

    // Let the microphone (the tone WAV) play out, then "Stop". The WAV started before packets
    // reached the server, so that moment bounds its end however long the set-up took; it is not
    // looped (`%noloop`): waiting longer only records silence.
    const flowingAt = Date.now()
    await sleep(Math.max(0, flowingAt + PLAY_MS + LEAD_MS - Date.now()))
    await page.click("#stop")
    await until(async () => (await text("state")) === "completed", "the session to complete", 15_000, detail)
    expect(await text("errors")).toBe("")

    // The recording: DATA_DIR/recordings/<session>/<producer>.wav (one producer here), finalized, with the tones in order.
    const file = () => sessionRecordings(dataDir, sessionId)[0] ?? join(dataDir, "recordings", sessionId, "none.wav")
    await until(() => finalizedWav(file()) !== undefined, `a finalized recording of ${sessionId}`, 10_000, detail)
    expect(sessionRecordings(dataDir, sessionId)).toHaveLength(1)
    const samples = finalizedWav(file()) ?? new Int16Array(0)
    const check = checkToneSequence(samples, 16_000)
    expect(check.ok, `${check.reason ?? ""}\n${detail()}`).toBe(true)
    expect(samples.length / 16).toBeGreaterThan(DEFAULT_TONES.length * DEFAULT_TONE_MS)
    console.log(`first-run recording=${sessionId}/…wav audio_ms=${Math.round(samples.length / 16)} tones=${check.observed.join(",")}`)
  }, 120_000)
})

describe("start-up refuses what only works by accident", () => {
  const refused = async (env: Record<string, string>) => {
    const child = await startService({ DATA_DIR: join(work, "refused"), ...env })
    const { code } = await Promise.race([
      child.exited,
      sleep(15_000).then(() => {
        child.child.kill("SIGKILL")
        return { code: -1 }
      })
    ])
    return { code, lines: child.output().trim().split("\n") }
  }
  const secret = "Zx4mQ9vT2kLp7RwE1nYb6HcJ3sGd8FaU0oIt5eVr"

  it("an ENVIRONMENT typo, a weak secret or key, and production without an announced media address: one line naming the key, exit 1", async () => {
    const cases: ReadonlyArray<readonly [Record<string, string>, string]> = [
      [{ ENVIRONMENT: "Production", JWT_SECRET: secret }, "ENVIRONMENT=\"Production\": expected one of development, staging, production"],
      [{ ENVIRONMENT: "prod", JWT_SECRET: secret }, "ENVIRONMENT=\"prod\": expected one of development, staging, production"],
      [{ ENVIRONMENT: "production", JWT_SECRET: "x".repeat(40), MEDIASOUP_ANNOUNCED_IP: "127.0.0.1" }, "JWT_SECRET=<redacted>: expected a random secret"],
      [
        { ENVIRONMENT: "production", JWT_SECRET: secret, AUTH_PROVISIONING_KEY: "op-key-hunter2", MEDIASOUP_ANNOUNCED_IP: "127.0.0.1" },
        "AUTH_PROVISIONING_KEY=<redacted>: expected at least 32 characters"
      ],
      [{ ENVIRONMENT: "production", JWT_SECRET: secret }, "MEDIASOUP_ANNOUNCED_IP=(unset): expected the IP or host name clients send media to"]
    ]
    for (const [env, expected] of cases) {
      const { code, lines } = await refused(env)
      expect(code, JSON.stringify(env)).toBe(1)
      expect(lines, JSON.stringify(env)).toHaveLength(1)
      expect(lines[0]).toContain(expected)
      expect(lines[0]).not.toContain("hunter2")
    }
  }, 90_000)
})

describe("outside development nothing is made up", () => {
  it("production and staging print no provisioning key and refuse registration (403); staging warns about what it lacks", async () => {
    for (
      const env of [
        { ENVIRONMENT: "production", JWT_SECRET: "Zx4mQ9vT2kLp7RwE1nYb6HcJ3sGd8FaU0oIt5eVr", MEDIASOUP_ANNOUNCED_IP: "127.0.0.1" },
        { ENVIRONMENT: "staging" }
      ]
    ) {
      const started = await startService({ DATA_DIR: join(work, `no-dev-${env.ENVIRONMENT}`), ...env })
      try {
        await waitForOk(`${started.httpUrl}/ready`, 30_000)
        const res = await fetch(`${started.httpUrl}/api/auth/devices`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ userId: "u" })
        })
        expect(res.status, env.ENVIRONMENT).toBe(403)
        const messages = logMessages(started.output())
        expect(messages.some((m) => m.includes("provisioning key (")), env.ENVIRONMENT).toBe(false)
        expect(messages.some((m) => m.startsWith("media: announcing 127.0.0.1")), env.ENVIRONMENT).toBe(false)
        if (env.ENVIRONMENT === "staging") {
          expect(messages).toContain("media: MEDIASOUP_ANNOUNCED_IP is unset: ICE candidates carry 0.0.0.0, which clients cannot reach")
          expect(messages.some((m) => m.startsWith("auth: JWT_SECRET is unset"))).toBe(true)
        }
      } finally {
        started.child.kill("SIGKILL")
        await started.exited
      }
    }
  }, 90_000)
})
