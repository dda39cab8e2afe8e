import { performance } from "node:perf_hooks"
import { captureOpusRtp } from "../test/support/ffmpeg-rtp.ts"
import { type Api, openOpusProducer } from "./datachannel-client.ts"
import { RemoteFakeAsr } from "./fake-asr-client.ts"
import {
  accessToken,
  api,
  field,
  firstChunk,
  fmt,
  FRAME_MS,
  localLoad,
  measureWindow,
  opusSender,
  sleep,
  startSender,
  type Stream,
  withService
} from "./ingest-rig.ts"
import { type BenchResult, percentile } from "./support.ts"
import { publishWhip } from "./whip-client.ts"

// WHIP ingest (RFC 9725) against the JSON signaling it replaces, with werift publishers in this
// process (whip-client.ts, datachannel-client.ts) sending real Opus RTP (ffmpeg-encoded tones,
// captured once, replayed every 20 ms with each stream's own sequence numbers and timestamps) to
// `node src/main.ts` (its own fresh Postgres database), which decodes it and sends 16 kHz chunks to
// the fake ASR gateway (its own process; it stamps each chunk's arrival).
//
// 1. Setup time, SETUPS publishers of each path one after the other (alternating), on an otherwise
//    idle service: from the first signaling request to the fake ASR's receipt of the session's first
//    chunk. WHIP: POST /whip (the offer is made and ICE gathered before, not counted; shown apart).
//    JSON: POST /api/session, POST transports, (werift offer), POST connect, POST produce. Both then
//    wait for ICE+DTLS and send RTP from then on. Each session is ended before the next one.
// 2. Concurrent WHIP publishers: N grows in STEPS (earlier ones keep streaming; the new ones are
//    opened OPEN_CONCURRENCY at a time and each sends from the moment it is connected; a publish that
//    fails ends the ramp); per step a warm-up and a measured window; loss = packets sent in the
//    window vs distinct chunk sequences the fake holds for them GRACE_MS after it. The largest N
//    under 1 % loss is reported. Each step line also says where a loss happened: RTP gaps the
//    service saw (lost before it), chunks its ASR client got taken by gRPC, ASR stream restarts (a
//    write not taken within the deadline), the service's event loop lag; and, as the werift peers
//    run in this process, its CPU and how late the sender's ticks ran (load generator limits).
//
// ratio = json_setup_p50 / whip_setup_p50: higher is better for WHIP (> 1: WHIP is faster to set up).

const SETUPS = Number(process.env["BENCH_WHIP_SETUPS"] ?? 50)
const STEPS = (process.env["BENCH_WHIP_STEPS"] ?? "10,25,50,100,150,200,300").split(",").map(Number)
/** Publishers a step opens at once. */
const OPEN_CONCURRENCY = Number(process.env["BENCH_WHIP_OPEN_CONCURRENCY"] ?? 8)
const WARMUP_MS = 1_000
const WINDOW_MS = Number(process.env["BENCH_SECONDS"] ?? 4) * 1000
/** A chunk later than this after the window counts as lost (generous: the machine the benches share is loaded). */
const GRACE_MS = Number(process.env["BENCH_WHIP_GRACE_MS"] ?? 1_000)
/** Steps start only within this time from the start (the default run stays under ~3 minutes). */
const TIME_BUDGET_MS = Number(process.env["BENCH_WHIP_BUDGET_SECONDS"] ?? 140) * 1000
const MAX_LOSS_PCT = 1

interface Setup {
  /** First request -> signaling done (WHIP: the 201; JSON: produce answered), ms. */
  readonly signaledMs: number
  /** First request -> ICE and DTLS connected, ms. */
  readonly connectedMs: number
  /** First request -> the fake ASR received the session's first chunk, ms. */
  readonly firstChunkMs: number
}

const whipSetup = async (base: string, token: string, fake: RemoteFakeAsr, templates: ReadonlyArray<Buffer>): Promise<Setup & { readonly offerMs: number }> => {
  const publisher = await publishWhip(base, token)
  const connectedAt = Date.now()
  try {
    const at = await firstChunk(fake, publisher.sessionId, opusSender(publisher.sender, publisher.payloadType, templates))
    return {
      signaledMs: publisher.answeredAt - publisher.postedAt,
      connectedMs: connectedAt - publisher.postedAt,
      firstChunkMs: at - publisher.postedAt,
      offerMs: publisher.offerMs
    }
  } finally {
    await publisher.close()
  }
}

const jsonSetup = async (base: string, auth: Record<string, string>, fake: RemoteFakeAsr, templates: ReadonlyArray<Buffer>): Promise<Setup> => {
  const call: Api = (method, path, body, status) => api(base, method, path, body, auth, status)
  const began = Date.now()
  const sessionId = field(await call("POST", "/api/session", {}, 201), "id")
  const producer = await openOpusProducer(call, sessionId)
  const connectedAt = Date.now()
  try {
    const at = await firstChunk(fake, sessionId, opusSender(producer.sender, producer.payloadType, templates))
    return { signaledMs: producer.producedAt - began, connectedMs: connectedAt - began, firstChunkMs: at - began }
  } finally {
    await producer.close()
    await call("POST", `/api/session/${sessionId}/stop`, undefined, 200)
  }
}

const describeSetups = (name: string, setups: ReadonlyArray<Setup>): string => {
  const p = (pick: (s: Setup) => number, q: number) => fmt(percentile(setups.map(pick), q), 1)
  return `${name.padEnd(4)} n=${setups.length}: first request -> signaling done p50 ${p((s) => s.signaledMs, 50)} ms, -> connected p50 ${
    p((s) => s.connectedMs, 50)
  } ms, -> first chunk at the ASR p50 ${p((s) => s.firstChunkMs, 50)} ms p95 ${p((s) => s.firstChunkMs, 95)} ms`
}

// ---- concurrent publishers ----------------------------------------------------------------

interface Step {
  readonly n: number
  /** Publishers of which no chunk of the window arrived. */
  readonly silent: number
  readonly sent: number
  readonly lost: number
  readonly lossPct: number
  readonly cpuPct: number
  readonly rssMb: number
  /** The service's event loop lag p99 (prom-client's default metric) after the window, ms. */
  readonly serviceLagP99: number
  /** RTP packets the service found missing (sequence gaps): lost before it, between werift and the decoder. */
  readonly gaps: number
  /** Chunks the service's ASR client handed to gRPC during the window (all sessions). */
  readonly asrSent: number
  /** ASR gateway streams the service restarted in the window (a write not taken in time). */
  readonly asrRestarts: number
  readonly benchCpuPct: number
  readonly sendLateP99: number
}

const openWhipStream = async (base: string, token: string, templates: ReadonlyArray<Buffer>): Promise<Stream> => {
  const publisher = await publishWhip(base, token)
  return {
    path: "whip",
    sessionId: publisher.sessionId,
    everyMs: FRAME_MS,
    send: opusSender(publisher.sender, publisher.payloadType, templates),
    close: publisher.close,
    startedAt: 0,
    sent: 0
  }
}

/** The service's /metrics now, as a reader of one metric's samples summed over their labels. */
const readMetrics = async (base: string): Promise<(name: string) => number> => {
  const text = await fetch(`${base}/metrics`).then((r) => r.text())
  return (name) => [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm"))].reduce((total, m) => total + Number(m[1]), 0)
}

const measure = async (base: string, pid: number, fake: RemoteFakeAsr, streams: ReadonlyArray<Stream>, sendLate: Array<number>): Promise<Step> => {
  const w = await measureWindow(pid, localLoad(streams, sendLate), { windowMs: WINDOW_MS, graceMs: GRACE_MS }, () => readMetrics(base))
  const received = await Promise.all(w.ranges.map((r) => fake.count([r])))
  const lost = w.sent - received.reduce((a, b) => a + b, 0)
  const delta = (name: string) => w.after(name) - w.before(name)
  return {
    n: streams.length,
    silent: received.filter((r) => r === 0).length,
    sent: w.sent,
    lost,
    lossPct: w.sent === 0 ? 100 : (100 * lost) / w.sent,
    cpuPct: w.cpuPct,
    rssMb: w.rssMb,
    serviceLagP99: 1000 * (await readMetrics(base))("nodejs_eventloop_lag_p99_seconds"),
    gaps: delta("auralink_audio_loss_total"),
    asrSent: delta("auralink_asr_chunks_sent_total"),
    asrRestarts: delta("auralink_asr_reconnects_total"),
    benchCpuPct: w.loadCpuPct,
    sendLateP99: w.sendLateP99
  }
}

const describeStep = (s: Step): string =>
  `N=${String(s.n).padStart(3)} WHIP publishers: loss ${s.lossPct.toFixed(2)} % (${s.lost}/${s.sent} packets; ${s.silent} publishers silent), ` +
  `service+workers cpu ${s.cpuPct.toFixed(0)} % rss ${s.rssMb.toFixed(0)} MB, service event loop lag p99 ${s.serviceLagP99.toFixed(0)} ms, ` +
  `RTP gaps seen by the service ${s.gaps}, chunks it handed to the ASR client ${s.asrSent}, ASR stream restarts ${s.asrRestarts}, bench process (werift peers) cpu ${
    s.benchCpuPct.toFixed(0)
  } %, sender tick late p99 ${s.sendLateP99.toFixed(1)} ms`

export const run = async (): Promise<BenchResult> => {
  const began = performance.now()
  const captured = await captureOpusRtp({ payloadType: 111, frameMs: FRAME_MS })
  const templates = captured.map((c) => c.packet).filter((p) => p.length > 12)
  console.log(`captured ${templates.length} Opus RTP packets (${FRAME_MS} ms frames) from ffmpeg`)
  const fake = await RemoteFakeAsr.start()
  try {
    return await withService(fake.url, async ({ base, pid }) => {
      const token = await accessToken(base, "bench-whip")
      const auth = { authorization: `Bearer ${token}` }

      // 1. setup times, WHIP and JSON alternating (each one first every other time).
      const whip: Array<Setup & { readonly offerMs: number }> = []
      const json: Array<Setup> = []
      for (let i = 0; i < SETUPS; i++) {
        if (i % 2 === 0) whip.push(await whipSetup(base, token, fake, templates))
        json.push(await jsonSetup(base, auth, fake, templates))
        if (i % 2 === 1) whip.push(await whipSetup(base, token, fake, templates))
      }
      console.log(describeSetups("whip", whip))
      console.log(describeSetups("json", json))
      console.log(`whip offer + ICE gathering in werift before the POST (not counted): p50 ${fmt(percentile(whip.map((s) => s.offerMs), 50), 1)} ms`)
      const whipP50 = percentile(whip.map((s) => s.firstChunkMs), 50)
      const whipP95 = percentile(whip.map((s) => s.firstChunkMs), 95)
      const jsonP50 = percentile(json.map((s) => s.firstChunkMs), 50)
      const ratio = jsonP50 / whipP50
      console.log(`ratio = json_setup_p50 / whip_setup_p50 = ${fmt(ratio)} (higher is better for WHIP)`)

      // 2. concurrent WHIP publishers.
      const streams: Array<Stream> = []
      const sender = startSender(streams)
      const steps: Array<Step> = []
      let limit = "no step lost >= 1 % (the step list or the time budget ended first)"
      try {
        for (const n of STEPS) {
          if (performance.now() - began > TIME_BUDGET_MS) {
            console.log(`time budget reached before N=${n}`)
            break
          }
          let missing = n - streams.length
          const refused: Array<string> = []
          await Promise.all(Array.from({ length: OPEN_CONCURRENCY }, async () => {
            while (missing > 0) {
              missing -= 1
              // Each one streams from the next tick on; a publish that fails ends the ramp.
              await openWhipStream(base, token, templates).then((st) => streams.push(st), (error: unknown) => refused.push(String(error).split("\n")[0] ?? ""))
            }
          }))
          if (refused.length > 0) {
            limit = `N=${n}: ${refused.length} publisher(s) could not be opened (${refused[0]})`
            console.log(limit)
            break
          }
          await sleep(WARMUP_MS)
          const step = await measure(base, pid, fake, streams, sender.lateMs)
          console.log(describeStep(step))
          steps.push(step)
          if (step.lossPct >= MAX_LOSS_PCT) {
            limit = `N=${n} lost ${step.lossPct.toFixed(2)} %`
            break
          }
        }
      } finally {
        sender.stop()
        await Promise.all(streams.map((st) => st.close()))
      }
      const sustained = steps.filter((s) => s.lossPct < MAX_LOSS_PCT)
      const best = sustained[sustained.length - 1]
      console.log(`largest N with < ${MAX_LOSS_PCT} % loss: ${best?.n ?? 0} (${limit})`)
      const figures = [
        `setup_p50_ms=${fmt(whipP50, 1)}`,
        `setup_p95_ms=${fmt(whipP95, 1)}`,
        `json_setup_p50_ms=${fmt(jsonP50, 1)}`,
        `ratio=${fmt(ratio)}`,
        `max_publishers=${best?.n ?? 0}`
      ]
      return { summary: `whip ${figures.join(" ")}` }
    })
  } finally {
    fake.stop()
  }
}
