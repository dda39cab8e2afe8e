import { execFile } from "node:child_process"
import { mkdir, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { AUDIO_TONE_PIPELINE, buildStub, runWhipClient, VIDEO_BALL_PIPELINE, WHIP_CLIENT_BIN, withWhipNetns } from "./whip-client.ts"
import { type RecordedRequest, startWhipRecorder } from "./whip-recorder.ts"

/**
 * Regenerates test/fixtures/sdp/gstreamer-webrtcbin-* (root: `node test/support/whip-client-capture-main.ts [outDir]`):
 * whip-client publishes to the recording endpoint (fake answers) in a private namespace, audio-only and
 * audio+video, with trickle and with -n; every request (headers too) is also written to a temp dir for inspection.
 */

const outDir = process.argv[2] ?? "test/fixtures/sdp"

interface Capture {
  readonly name: string
  readonly video: boolean
  readonly noTrickle: boolean
}

const CAPTURES: ReadonlyArray<Capture> = [
  { name: "audio-trickle", video: false, noTrickle: false },
  { name: "audio-no-trickle", video: false, noTrickle: true },
  { name: "audio-video-trickle", video: true, noTrickle: false },
  { name: "audio-video-no-trickle", video: true, noTrickle: true }
]

const isPost = (r: RecordedRequest): boolean => r.method === "POST"
const isLastPatch = (r: RecordedRequest): boolean => r.method === "PATCH" && r.body.includes("a=end-of-candidates")

const capture = async (stubDir: string, spec: Capture): Promise<ReadonlyArray<RecordedRequest>> =>
  withWhipNetns(async (netns) => {
    const recorder = await startWhipRecorder({ host: netns.hostIp, answer: "fake" })
    try {
      const client = await runWhipClient({
        url: recorder.url(),
        nsName: netns.nsName,
        stubDir,
        audioPipeline: AUDIO_TONE_PIPELINE,
        ...(spec.video ? { videoPipeline: VIDEO_BALL_PIPELINE } : {}),
        noTrickle: spec.noTrickle
      })
      await recorder.waitFor(spec.noTrickle ? isPost : isLastPatch)
      // Stopped before it has read the 201, whip-client knows no resource to DELETE.
      await client.waitForOutput(/Setting remote description/)
      const exit = await client.stop()
      if (exit.code !== 0) throw new Error(`whip-client exited ${exit.code ?? exit.signal}:\n${client.output()}`)
      await recorder.waitFor((r) => r.method === "DELETE", 2_000)
      return [...recorder.requests]
    } finally {
      await recorder.close()
    }
  })

const main = async (): Promise<void> => {
  const stubDir = await buildStub()
  const version = (await promisify(execFile)("dpkg-query", ["-W", "-f", "${Version}", "simple-whip-client"])).stdout
  const rawDir = join(tmpdir(), `whip-client-capture-${process.pid}`)
  await mkdir(rawDir, { recursive: true })
  await mkdir(outDir, { recursive: true })
  const offers = new Map<string, string>()
  for (const spec of CAPTURES) {
    const requests = await capture(stubDir, spec)
    const raw = requests.map((r) => `### ${r.method} ${r.path}\n${JSON.stringify(r.headers)}\n${r.body}`).join("\n")
    await writeFile(join(rawDir, `${spec.name}.txt`), raw)
    offers.set(spec.name, requests.find(isPost)?.body ?? "")
    const patches = requests.filter((r) => r.method === "PATCH")
    if (spec.name === "audio-trickle") {
      // whip-client batches candidates every 100 ms; on one host interface they all go in one PATCH.
      if (patches.length !== 1) throw new Error(`expected one PATCH, got ${patches.length}: run again`)
      await writeFile(join(outDir, "gstreamer-webrtcbin-trickle.sdpfrag"), patches[0]?.body ?? "")
    }
    console.log(`${spec.name}: ${requests.map((r) => r.method).join(" ")}`)
  }
  await writeFile(join(outDir, "gstreamer-webrtcbin-audio.sdp"), offers.get("audio-no-trickle") ?? "")
  await writeFile(join(outDir, "gstreamer-webrtcbin-audio-video.sdp"), offers.get("audio-video-no-trickle") ?? "")
  console.log(`${WHIP_CLIENT_BIN} ${version}: fixtures written to ${outDir}, every request to ${rawDir}`)
}

await main()
