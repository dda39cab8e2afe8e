import { readFile } from "node:fs/promises"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { AUDIO_TONE_PIPELINE, buildStub, createWhipNetns, runWhipClient, VIDEO_BALL_PIPELINE, type WhipNetns } from "../support/whip-client.ts"
import { RESOURCE_ETAG, startWhipRecorder, type WhipRecorder } from "../support/whip-recorder.ts"

// Debian's whip-client, unmodified, in a private network namespace, publishing to a recording endpoint.
describe("whip-client harness", () => {
  let stubDir = ""
  let netns: WhipNetns | undefined
  let recorder: WhipRecorder | undefined

  beforeAll(async () => {
    stubDir = await buildStub()
    netns = await createWhipNetns()
    recorder = await startWhipRecorder({ host: netns.hostIp, answer: "fake" })
  })

  afterAll(async () => {
    await recorder?.close()
    await netns?.close()
  })

  const setup = (): { netns: WhipNetns; recorder: WhipRecorder } => {
    if (netns === undefined || recorder === undefined) throw new Error("beforeAll did not finish")
    return { netns, recorder }
  }

  it("publishes audio+video from the namespace: a BUNDLEd offer, trickled candidates, DELETE on SIGINT, no libsoup3", async () => {
    const { netns, recorder } = setup()
    const path = "/whip/audio-video"
    const client = await runWhipClient({
      url: recorder.url(path),
      nsName: netns.nsName,
      stubDir,
      token: "test-token",
      audioPipeline: AUDIO_TONE_PIPELINE,
      videoPipeline: VIDEO_BALL_PIPELINE
    })
    const post = await recorder.waitFor((r) => r.method === "POST" && r.path === path)
    expect(post.headers["content-type"]).toBe("application/sdp")
    expect(post.headers.authorization).toBe("Bearer test-token")
    expect(post.body).toMatch(/^v=0\r\n/)
    expect(post.body).toMatch(/^m=audio \d+ UDP\/TLS\/RTP\/SAVPF 100\r$/m)
    expect(post.body).toMatch(/^a=rtpmap:100 OPUS\/48000\/2\r$/m)
    expect(post.body).toMatch(/^m=video \d+ UDP\/TLS\/RTP\/SAVPF 96\r$/m)
    expect(post.body).toMatch(/^a=group:BUNDLE \S+ \S+\r$/m)
    expect(post.body).toMatch(/^a=fingerprint:sha-256 [0-9A-F:]+\r$/m)

    const patch = await recorder.waitFor((r) => r.method === "PATCH" && r.body.includes("a=end-of-candidates"))
    expect(patch.headers["content-type"]).toBe("application/trickle-ice-sdpfrag")
    expect(patch.headers["if-match"]).toBe(RESOURCE_ETAG)
    expect(patch.body).toContain(`a=candidate:1 1 UDP 2015363327 ${netns.clientIp} `)

    // libsoup3 (the reason for the stub) never entered the process; the stub did.
    const maps = await readFile(`/proc/${client.child.pid}/maps`, "utf8")
    expect(maps).not.toContain("libsoup-3.0")
    expect(maps).toContain(stubDir)
    // The client's ICE checks crossed the veth to the answer's candidate.
    await expect.poll(() => recorder.udpDatagrams(), { timeout: 5_000 }).toBeGreaterThan(0)

    const exit = await client.stop()
    expect(exit, client.output()).toEqual({ code: 0, signal: null })
    const deleted = await recorder.waitFor((r) => r.method === "DELETE", 1_000)
    expect(deleted.path).toBe("/whip/resource/1")
  })

  it("audio-only with -n: candidates of the namespace address in the offer, no BUNDLE group (bundle-policy none)", async () => {
    const { netns, recorder } = setup()
    const path = "/whip/audio"
    const client = await runWhipClient({ url: recorder.url(path), nsName: netns.nsName, stubDir, noTrickle: true })
    const post = await recorder.waitFor((r) => r.method === "POST" && r.path === path)
    expect(post.body).toMatch(/^m=audio 9 UDP\/TLS\/RTP\/SAVPF 100\r$/m)
    expect(post.body).toContain(`a=candidate:1 1 UDP 2015363327 ${netns.clientIp} `)
    expect(post.body).toMatch(/^a=end-of-candidates\r$/m)
    // whip-client asks webrtcbin for bundle-policy max-bundle only when it sends audio and video.
    expect(post.body).not.toContain("a=group:BUNDLE")
    // Stopped only once its ICE checks run: a SIGINT while webrtcbin was still starting them once
    // left the client hung in its teardown (killed after 5 s, CI on a loaded machine).
    await expect.poll(() => recorder.udpDatagrams(), { timeout: 5_000 }).toBeGreaterThan(0)
    const exit = await client.stop()
    expect(exit, client.output()).toEqual({ code: 0, signal: null })
  })
})
