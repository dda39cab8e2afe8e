import { createSocket, type Socket } from "node:dgram"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { captureOpusRtp } from "../test/support/ffmpeg-rtp.ts"
import { concatSamples, DEFAULT_TONE_MS, DEFAULT_TONES, toneSequence, wavFile } from "../test/support/tones.ts"
import { encodeChunk } from "../src/programs/audio/pcm.ts"
import { openPcmChannel } from "./datachannel-client.ts"
import { RemoteFakeAsr } from "./fake-asr-client.ts"
import {
  accessToken,
  api,
  field,
  fmt,
  FRAME_MS,
  measureWindow,
  packetAt,
  PROVISIONING_KEY,
  sleep,
  startSender,
  type Stream,
  withService
} from "./ingest-rig.ts"
import { type BenchResult, percentile } from "./support.ts"
import { CHROMIUM, launchChromium } from "../test/support/chromium.ts"

// N concurrent sessions fed by this process, half of them (rounded down) by each path:
// - Opus RTP: a comedia PlainTransport (rtcpMux false) producing Opus (PT 100, ssrc 1111); real Opus
//   RTP packets (ffmpeg-encoded tones, captured once) replayed every 20 ms per session with
//   per-session sequence numbers and timestamps, so each session is one continuous stream;
// - PCM over a data channel: a WebRTC transport with the `audio-pcm` data channel, opened by a
//   WebRTC peer in this process (werift, see datachannel-client.ts), sending 40 ms chunks (the
//   demo's default size, 1296-byte messages) of the same tones every 40 ms.
// The service (`node src/main.ts`, its own fresh Postgres database) decodes/validates and sends
// 16 kHz chunks to a fake ASR gateway (a real gRPC server) running in this process.
//
// Steps: N grows (sessions are added, the earlier ones keep streaming); per step a warm-up, then a
// measured window. Per step:
// - loss: packets sent in the window vs distinct sequences the fake ASR holds for them GRACE_MS
//   after the window (a chunk later than that counts as lost);
// - server latency: `auralink_audio_server_latency_seconds` (receipt -> sink hand-off) of both paths, the
//   window's bucket deltas, p50/p99 interpolated within the buckets as histogram_quantile does
//   (also per path in the step line);
// - cpu_pct: CPU of the service process plus its mediasoup workers over the window, in % of one
//   core (this machine has 2: 200 % is everything); rss_mb: their summed RSS at the window's end.
// Capture -> ASR receipt (e2e) comes from Chromium (one session per path, unloaded server): headless
// Chromium runs the demo page with a fake microphone, and the latency is taken from the fake ASR's
// records, as in test/e2e/browser-audio.test.ts. The Opus figure there is server-side only: RTP
// capture time is mapped from the first packet's arrival (no sender reports reach the service).

const STEPS = (process.env["BENCH_AUDIO_STEPS"] ?? "10,25,50,75,100,150,200,250,300,400,500").split(",").map(Number)
const WARMUP_MS = 1_000
const WINDOW_MS = Number(process.env["BENCH_SECONDS"] ?? 5) * 1000
const GRACE_MS = 300
/** Steps start only within this time from the start (opening 100+ DTLS sessions takes a few seconds). */
const TIME_BUDGET_MS = 150_000
const MAX_LOSS_PCT = 1
const PCM_CHUNK_MS = 40
const PAYLOAD_TYPE = 100
const SSRC = 1111

// ---- streams ----------------------------------------------------------------------------

type AudioPathName = "rtp" | "pcm"

/** What streams send: Opus RTP templates (one socket for all), 16 kHz tones for PCM chunks. */
interface Media {
  readonly templates: ReadonlyArray<Buffer>
  readonly socket: Socket
  readonly tones: Int16Array
}

/** A session with a comedia plain transport producing Opus: its packets go to the transport's port. */
const openRtpStream = async (base: string, auth: Record<string, string>, media: Media): Promise<Stream> => {
  const sessionId = field(await api(base, "POST", "/api/session", {}, auth, 201), "id")
  const plain = await api(base, "POST", `/api/webrtc/${sessionId}/plain-transports`, { comedia: true, rtcpMux: false }, auth, 201)
  const rtpParameters = {
    codecs: [{ mimeType: "audio/opus", payloadType: PAYLOAD_TYPE, clockRate: 48000, channels: 2, parameters: { "sprop-stereo": 1 } }],
    encodings: [{ ssrc: SSRC }]
  }
  await api(base, "POST", `/api/webrtc/${sessionId}/plain-transports/${field(plain, "id")}/produce`, { kind: "audio", rtpParameters }, auth, 201)
  const port = Number(field(plain, "port"))
  return {
    path: "rtp",
    sessionId,
    everyMs: FRAME_MS,
    send: (index) => media.socket.send(packetAt(media.templates, index, SSRC, PAYLOAD_TYPE), port, "127.0.0.1"),
    close: async () => {},
    startedAt: 0,
    sent: 0
  }
}

/** A session with the PCM data channel open (werift): chunk `index` carries sequence `index`. */
const openPcmStream = async (base: string, auth: Record<string, string>, media: Media): Promise<Stream> => {
  const sessionId = field(await api(base, "POST", "/api/session", {}, auth, 201), "id")
  const { channel, close } = await openPcmChannel((method, path, body, status) => api(base, method, path, body, auth, status), sessionId)
  const samples = (PCM_CHUNK_MS * 16_000) / 1000
  return {
    path: "pcm",
    sessionId,
    everyMs: PCM_CHUNK_MS,
    send: (index) => {
      const from = (index * samples) % (media.tones.length - samples)
      const chunk = encodeChunk({ sequence: index, captureTimeMs: Date.now(), samples: media.tones.subarray(from, from + samples) })
      channel.send(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
    },
    close,
    startedAt: 0,
    sent: 0
  }
}

// ---- measurements -------------------------------------------------------------------------

type Buckets = ReadonlyArray<readonly [number, number]>

/** The cumulative buckets (le in ms, count) of `auralink_audio_server_latency_seconds`, per path and both summed. */
const latencyBuckets = async (base: string): Promise<Record<"rtp" | "datachannel" | "all", Buckets>> => {
  const text = await fetch(`${base}/metrics`).then((r) => r.text())
  const byPath = { rtp: new Map<number, number>(), datachannel: new Map<number, number>(), all: new Map<number, number>() }
  for (const line of text.split("\n")) {
    const m = /^auralink_audio_server_latency_seconds_bucket\{(.*)\} (\S+)$/.exec(line)
    const path = /path="([^"]+)"/.exec(m?.[1] ?? "")?.[1]
    const le = /le="([^"]+)"/.exec(m?.[1] ?? "")?.[1]
    if (m === null || le === undefined || (path !== "rtp" && path !== "datachannel")) continue
    const bound = le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le) * 1000
    for (const map of [byPath[path], byPath.all]) map.set(bound, (map.get(bound) ?? 0) + Number(m[2]))
  }
  const sorted = (map: Map<number, number>): Buckets => [...map].sort((a, b) => a[0] - b[0])
  return { rtp: sorted(byPath.rtp), datachannel: sorted(byPath.datachannel), all: sorted(byPath.all) }
}

/** histogram_quantile over the bucket deltas `after - before` (linear within a bucket). */
const quantile = (before: Buckets, after: Buckets, q: number): number => {
  const deltas: Buckets = after.map(([le, count]): readonly [number, number] => [le, count - (before.find(([l]) => l === le)?.[1] ?? 0)])
  const total = deltas[deltas.length - 1]?.[1] ?? 0
  if (total === 0) return Number.NaN
  const rank = q * total
  let lowerLe = 0
  let lowerCount = 0
  for (const [le, count] of deltas) {
    if (count >= rank) {
      if (le === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY // beyond the last bucket
      return lowerLe + ((le - lowerLe) * (rank - lowerCount)) / Math.max(1, count - lowerCount)
    }
    lowerLe = le
    lowerCount = count
  }
  return lowerLe
}

interface Step {
  readonly n: number
  readonly pcmSessions: number
  readonly sent: number
  readonly lost: number
  readonly lossPct: number
  readonly p50: number
  readonly p99: number
  readonly rtpP99: number
  readonly pcmP99: number
  readonly cpuPct: number
  readonly mainCpuPct: number
  readonly rssMb: number
  readonly benchCpuPct: number
  readonly sendLateP99: number
}

/** One measured window over the streams that are running now. */
const measure = async (base: string, pid: number, fake: RemoteFakeAsr, streams: ReadonlyArray<Stream>, sendLate: Array<number>): Promise<Step> => {
  const w = await measureWindow(pid, streams, sendLate, { windowMs: WINDOW_MS, graceMs: GRACE_MS }, () => latencyBuckets(base))
  const lost = w.sent - (await fake.count(w.ranges))
  return {
    n: streams.length,
    pcmSessions: streams.filter((s) => s.path === "pcm").length,
    sent: w.sent,
    lost,
    lossPct: w.sent === 0 ? 100 : (100 * lost) / w.sent,
    p50: quantile(w.before.all, w.after.all, 0.5),
    p99: quantile(w.before.all, w.after.all, 0.99),
    rtpP99: quantile(w.before.rtp, w.after.rtp, 0.99),
    pcmP99: quantile(w.before.datachannel, w.after.datachannel, 0.99),
    cpuPct: w.cpuPct,
    mainCpuPct: w.mainCpuPct,
    rssMb: w.rssMb,
    benchCpuPct: w.benchCpuPct,
    sendLateP99: w.sendLateP99
  }
}

/** A latency quantile; beyond the histogram's last finite bucket (1000 ms) it reads `>1000`. */
const ms = (n: number): string => (n === Number.POSITIVE_INFINITY ? ">1000" : n.toFixed(2))

const describeStep = (s: Step): string =>
  `N=${String(s.n).padStart(3)} (${s.n - s.pcmSessions} rtp, ${s.pcmSessions} pcm): loss ${s.lossPct.toFixed(2)} % (${s.lost}/${s.sent} packets+chunks), ` +
  `server latency p50 ${ms(s.p50)} ms p99 ${ms(s.p99)} ms (rtp p99 ${ms(s.rtpP99)}, pcm p99 ${ms(s.pcmP99)}), service+workers cpu ${
    s.cpuPct.toFixed(0)
  } % (node ${s.mainCpuPct.toFixed(0)} %) rss ${s.rssMb.toFixed(0)} MB, ` +
  `bench process cpu ${s.benchCpuPct.toFixed(0)} %, sender tick late p99 ${s.sendLateP99.toFixed(1)} ms`

// ---- Chromium: capture -> ASR receipt -------------------------------------------------------

interface E2e {
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

export const run = async (): Promise<BenchResult> => {
  const began = performance.now()
  // Real Opus RTP, once: ffmpeg encodes the tone sequence (2 s, 20 ms frames) to a socket here.
  const captured = await captureOpusRtp({ payloadType: PAYLOAD_TYPE, frameMs: FRAME_MS })
  const templates = captured.map((c) => c.packet).filter((p) => p.length > 12 && ((p[1] ?? 0) & 0x7f) === PAYLOAD_TYPE)
  console.log(`captured ${templates.length} Opus RTP packets (${FRAME_MS} ms frames) from ffmpeg`)
  const media: Media = { templates, socket: createSocket({ type: "udp4", sendBufferSize: 8 * 1024 * 1024 }), tones: toneSequence({ sampleRate: 16_000 }) }

  const fake = await RemoteFakeAsr.start()
  let sender: ReturnType<typeof startSender> | undefined
  try {
    return await withService(fake.url, async ({ base, pid }) => {
      try {
        // Capture -> ASR receipt from Chromium first, on the idle service.
        let e2e: ReadonlyArray<E2e> = []
        if (existsSync(CHROMIUM)) {
          e2e = await browserE2e(base, fake).catch((error: unknown) => {
            console.log(`chromium part failed: ${String(error)}`)
            return []
          })
          for (const r of e2e) {
            console.log(`browser-audio path=${r.path} chunks=${r.chunks} capture_to_asr_p50_ms=${fmt(r.p50, 1)} capture_to_asr_p95_ms=${fmt(r.p95, 1)}`)
          }
        } else {
          console.log(`no Chromium at ${CHROMIUM}: e2e_p95_ms=na`)
        }

        const auth = { authorization: `Bearer ${await accessToken(base, "bench-rtp")}` }
        const streams: Array<Stream> = []
        sender = startSender(streams)
        const steps: Array<Step> = []
        for (const n of STEPS) {
          if (performance.now() - began > TIME_BUDGET_MS) {
            console.log(`time budget reached before N=${n}`)
            break
          }
          // Half of the sessions (rounded down) on each path; opened 8 at a time.
          const pending: Array<AudioPathName> = []
          let pcm = streams.filter((st) => st.path === "pcm").length
          for (let total = streams.length; total < n; total++) {
            const path = pcm < Math.floor(n / 2) ? "pcm" : "rtp"
            if (path === "pcm") pcm++
            pending.push(path)
          }
          const opened: Array<Stream> = []
          await Promise.all(Array.from({ length: 8 }, async () => {
            for (let path = pending.shift(); path !== undefined; path = pending.shift()) {
              opened.push(await (path === "pcm" ? openPcmStream : openRtpStream)(base, auth, media))
            }
          }))
          streams.push(...opened)
          await sleep(WARMUP_MS)
          const step = await measure(base, pid, fake, streams, sender.lateMs)
          console.log(describeStep(step))
          steps.push(step)
          if (step.lossPct >= MAX_LOSS_PCT) break
        }
        sender.stop()
        sender = undefined
        await Promise.all(streams.map((st) => st.close()))

        const at10 = steps.find((s) => s.n === 10)
        if (at10 !== undefined) console.log(`at N=10: ${describeStep(at10)}`)
        const sustained = steps.filter((s) => s.lossPct < MAX_LOSS_PCT)
        const best = sustained[sustained.length - 1]
        const lastStep = steps[steps.length - 1]
        if (best !== undefined) {
          const limit = lastStep !== undefined && lastStep.lossPct >= MAX_LOSS_PCT
            ? `N=${lastStep.n} lost ${lastStep.lossPct.toFixed(2)} %`
            : "no step lost >= 1 % (the step list or the time budget ended first)"
          console.log(`largest N with < ${MAX_LOSS_PCT} % loss: ${best.n} (${limit})`)
        }
        const e2eP95 = e2e.length === 0 ? Number.NaN : Math.max(...e2e.map((r) => r.p95))
        const figures = [
          `max_sessions=${best?.n ?? 0}`,
          `server_p50_ms=${fmt(best?.p50 ?? Number.NaN)}`,
          `server_p99_ms=${fmt(best?.p99 ?? Number.NaN)}`,
          `e2e_p95_ms=${fmt(e2eP95, 1)}`,
          `cpu_pct=${fmt(best?.cpuPct ?? Number.NaN, 0)}`,
          `rss_mb=${fmt(best?.rssMb ?? Number.NaN, 0)}`,
          `loss_pct=${fmt(best?.lossPct ?? Number.NaN)}`
        ]
        return { summary: `audio-ingest ${figures.join(" ")}` }
      } finally {
        sender?.stop()
      }
    })
  } finally {
    fake.stop()
    media.socket.close()
  }
}
