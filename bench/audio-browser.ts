// Capture -> ASR receipt (e2e) from Chromium (one session per path, unloaded service): headless
// Chromium runs the demo page with a fake microphone, and the latency is taken from the fake ASR's
// records, as in test/e2e/browser-audio.test.ts. The Opus figure there is server-side only: RTP
// capture time is mapped from the first packet's arrival (no sender reports reach the service).
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { CHROMIUM, launchChromium } from "../test/support/chromium.ts"
import { concatSamples, DEFAULT_TONE_MS, DEFAULT_TONES, toneSequence, wavFile } from "../test/support/tones.ts"
import type { RemoteFakeAsr } from "./fake-asr-client.ts"
import { fmt, PROVISIONING_KEY, sleep } from "./ingest-rig.ts"
import { percentile } from "./support.ts"

export interface E2e {
  readonly path: string
  readonly chunks: number
  readonly p50: number
  readonly p95: number
}

/**
 * Headless Chromium plays a tone WAV as its microphone through the demo page, one session per path
 * ("pcm": 40 ms PCM chunks over a data channel, capture time stamped by the page; "webrtc": Opus,
 * whose capture time the server maps from the first packet's arrival), on the otherwise idle service.
 */
const browserE2e = async (base: string, fake: RemoteFakeAsr): Promise<ReadonlyArray<E2e>> => {
  const work = mkdtempSync(join(tmpdir(), "auralink-bench-audio-"))
  try {
    const rate = 48_000
    const lead = new Int16Array(rate / 2)
    const wavPath = join(work, "tones.wav")
    writeFileSync(wavPath, wavFile(concatSamples([lead, toneSequence({ sampleRate: rate }), lead]), rate))
    const browser = await launchChromium(wavPath)
    try {
      const results: Array<E2e> = []
      const paths: ReadonlyArray<"pcm" | "webrtc"> = ["pcm", "webrtc"]
      for (const path of paths) {
        const context = await browser.newContext()
        try {
          const page = await context.newPage()
          await page.goto(`${base}/demo`)
          await page.waitForFunction(() => typeof window.demo?.start === "function")
          const args: readonly ["pcm" | "webrtc", string, string] = [path, PROVISIONING_KEY, `bench-browser-${path}`]
          const sessionId = await page.evaluate(([p, key, userId]) => window.demo.start(p, { provisioningKey: key, userId, chunkMs: 40 }), args)
          await sleep(1000 + DEFAULT_TONES.length * DEFAULT_TONE_MS + 300)
          await page.evaluate(() => window.demo.stop())
          await sleep(300)
          const latencies = await fake.latencies(sessionId)
          results.push({ path, chunks: latencies.length, p50: percentile(latencies, 50), p95: percentile(latencies, 95) })
        } finally {
          await context.close()
        }
      }
      return results
    } finally {
      await browser.close()
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

/** The e2e figures (printed, one line per path), none when Chromium is missing or fails. */
export const browserFigures = async (base: string, fake: RemoteFakeAsr): Promise<ReadonlyArray<E2e>> => {
  if (!existsSync(CHROMIUM)) {
    console.log(`no Chromium at ${CHROMIUM}: e2e_p95_ms=na`)
    return []
  }
  const e2e = await browserE2e(base, fake).catch((error: unknown) => {
    console.log(`chromium part failed: ${String(error)}`)
    return []
  })
  for (const r of e2e) {
    console.log(`browser-audio path=${r.path} chunks=${r.chunks} capture_to_asr_p50_ms=${fmt(r.p50, 1)} capture_to_asr_p95_ms=${fmt(r.p95, 1)}`)
  }
  return e2e
}
