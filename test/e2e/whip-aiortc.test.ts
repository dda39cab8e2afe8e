import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { list, record, request, signIn } from "../support/auth.ts"
import { crossCorrelation, decimate, findEvent, readWav, runWhepPlay, runWhipPublish, type ScriptRun } from "../support/aiortc.ts"
import { baseUrl } from "../support/http.ts"
import { eventually, mediaServer, sessionRecordings, user } from "../support/media.ts"
import { finalizedWav } from "../support/recording.ts"
import { wavFile } from "../support/tones.ts"
import { Sessions } from "../../src/layers/SessionStore.ts"
import { SessionId } from "../../src/schemas/ids.ts"

/**
 * WHIP and WHEP with a non-browser stack: Debian's aiortc 1.4 (test/support/aiortc/) publishes a WAV of band-limited
 * noise to the real service (mediasoup on loopback, WAV recording sink) and, while it streams, plays the session back
 * over WHEP. What the sink recorded and what the viewer heard must be the noise that was sent (cross-correlation).
 */

const RATE = 16_000
const work = mkdtempSync(join(tmpdir(), "auralink-whip-aiortc-"))
const dataDir = join(work, "data")
const sentWav = join(work, "noise.wav")

/** 4 s of white noise made at 48 kHz and decimated to 16 kHz (so band-limited to ~7 kHz), amplitude ~1/4 full scale. */
const noise16k = (): Int16Array => {
  const at48k = new Int16Array(4 * 48_000)
  let x = 12345
  for (let i = 0; i < at48k.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    at48k[i] = ((x >>> 16) - 32768) >> 1
  }
  return decimate(at48k, 3)
}
const sent = noise16k()
writeFileSync(sentWav, wavFile(sent, RATE))

const CONSENT_SECONDS = 10
const Server = mediaServer({
  MEDIASOUP_WORKERS: "1",
  RTC_MIN_PORT: "42300",
  RTC_MAX_PORT: "42399",
  DATA_DIR: dataDir,
  MEDIASOUP_ICE_CONSENT_TIMEOUT_SECONDS: String(CONSENT_SECONDS),
  MEDIA_CONSENT_GRACE_MS: "500"
})

/** How session `id` ended: its last transition's state and reason. */
const ending = (id: string) =>
  Effect.gen(function*() {
    const events = yield* Effect.orDie((yield* Sessions).events(SessionId.make(id)))
    const last = events[events.length - 1]
    return { to: last?.to, reason: last?.reason }
  })

const describeRun = (run: ScriptRun) => `exit ${run.code ?? run.signal}; events ${JSON.stringify(run.events)}; stderr ${run.stderr}`

/** Publishes the noise (deleting the resource at the end) and, once it is published, plays the session for 2 s. */
const publishAndView = (video: boolean) =>
  Effect.gen(function*() {
    const base = yield* baseUrl
    const alice = yield* signIn(user("alice"))
    const heard = join(work, `heard-${video ? "av" : "audio"}.wav`)
    const viewers: Array<Promise<ScriptRun>> = []
    const publish = yield* Effect.promise(() =>
      runWhipPublish({
        url: `${base}/whip`,
        token: alice.token,
        wav: sentWav,
        video,
        delete: true,
        onEvent: (event) => {
          const sessionId = event["sessionId"]
          if (event.event !== "published" || typeof sessionId !== "string") return
          viewers.push(runWhepPlay({ url: `${base}/whep/sessions/${sessionId}`, token: alice.token, out: heard, seconds: 2, video }))
        }
      })
    )
    assert.strictEqual(publish.code, 0, describeRun(publish))
    assert.deepStrictEqual(publish.events.map((e) => e.event), ["published", "done", "deleted"], describeRun(publish))
    assert.strictEqual(findEvent(publish, "done")?.["reason"], "eof")
    assert.strictEqual(findEvent(publish, "deleted")?.["status"], 200)
    const sessionId = findEvent(publish, "published")?.["sessionId"]
    if (typeof sessionId !== "string") return assert.fail(`no session id: ${describeRun(publish)}`)
    const [viewer] = viewers
    if (viewer === undefined) return assert.fail("the viewer never started")
    const play = yield* Effect.promise(() => viewer)
    assert.strictEqual(play.code, 0, describeRun(play))
    assert.deepStrictEqual(play.events.map((e) => e.event), ["connected", "done", "deleted"], describeRun(play))
    return { sessionId, play, heard: readWav(heard) }
  })

/** The session's WAV recording once it is finalized (the session ended with the DELETE). */
const finalRecording = (sessionId: string) =>
  Effect.gen(function*() {
    const recorded = () => {
      const file = sessionRecordings(dataDir, sessionId)[0]
      return file === undefined ? undefined : finalizedWav(file)
    }
    yield* eventually(Effect.sync(() => recorded() !== undefined), "the finalized recording", 15_000)
    return recorded() ?? new Int16Array()
  })

layer(Server, { timeout: 90_000, excludeTestServices: true })("aiortc over WHIP and WHEP", (it) => {
  it.effect("audio: the sink records what was sent, a viewer who joins while it streams hears it; DELETE ends both", () =>
    Effect.gen(function*() {
      const { heard, sessionId } = yield* publishAndView(false)
      assert.strictEqual(heard.sampleRate, 48_000)
      assert.isAbove(heard.samples.length, 48_000, "the viewer recorded at least 1 s")
      // The viewer joined late: its 2 s are somewhere inside the 4 s sent (it leads: lag negative).
      const viewerMatch = crossCorrelation(sent, decimate(heard.samples, 3), sent.length)
      assert.isAbove(viewerMatch.peak, 0.8, `viewer: ${JSON.stringify(viewerMatch)}`)
      const recorded = yield* finalRecording(sessionId)
      const sinkMatch = crossCorrelation(sent, recorded, RATE)
      assert.isAbove(sinkMatch.peak, 0.8, `sink: ${JSON.stringify(sinkMatch)}`)
      console.log(`aiortc WHIP -> sink ${JSON.stringify(sinkMatch)} (${recorded.length} samples); WHEP viewer ${JSON.stringify(viewerMatch)}`)
    }))

  it.effect("audio and video: the viewer decodes video frames and still hears the audio", () =>
    Effect.gen(function*() {
      const { heard, play, sessionId } = yield* publishAndView(true)
      const videoFrames = findEvent(play, "done")?.["videoFrames"]
      assert.isNumber(videoFrames)
      assert.isAbove(typeof videoFrames === "number" ? videoFrames : 0, 10, describeRun(play))
      const viewerMatch = crossCorrelation(sent, decimate(heard.samples, 3), sent.length)
      assert.isAbove(viewerMatch.peak, 0.8, `viewer: ${JSON.stringify(viewerMatch)}`)
      const sinkMatch = crossCorrelation(sent, yield* finalRecording(sessionId), RATE)
      assert.isAbove(sinkMatch.peak, 0.8, `sink: ${JSON.stringify(sinkMatch)}`)
      console.log(`aiortc WHIP audio+video: ${String(videoFrames)} video frames at the viewer; sink ${JSON.stringify(sinkMatch)}`)
    }))

  it.effect("a refused POST: the scripts exit 1 with the HTTP status and the problem body on stderr, no events", () =>
    Effect.gen(function*() {
      const base = yield* baseUrl
      const alice = yield* signIn(user("alice"))
      const unauthorised = yield* Effect.promise(() => runWhipPublish({ url: `${base}/whip`, token: "not-a-token", wav: sentWav }))
      assert.strictEqual(unauthorised.code, 1, describeRun(unauthorised))
      assert.deepStrictEqual(unauthorised.events, [])
      assert.match(unauthorised.stderr, /HTTP 401/)
      const unknown = `${base}/whep/sessions/0f3c2b9e-8f55-4d0a-9a51-3a1f0f0e2a11`
      const noSession = yield* Effect.promise(() => runWhepPlay({ url: unknown, token: alice.token, out: join(work, "none.wav"), seconds: 1 }))
      assert.strictEqual(noSession.code, 1, describeRun(noSession))
      assert.match(noSession.stderr, /HTTP 404\n.*"status":\s*404/s)
    }))

  it.effect("a publisher that closes its connection without DELETE (DTLS close alert): the session expires, reason dtls_closed", () =>
    Effect.gen(function*() {
      const base = yield* baseUrl
      const alice = yield* signIn(user("alice"))
      const run = yield* Effect.promise(() => runWhipPublish({ url: `${base}/whip`, token: alice.token, wav: sentWav, seconds: 1 }))
      assert.strictEqual(run.code, 0, describeRun(run))
      const sessionId = String(findEvent(run, "published")?.["sessionId"])
      yield* eventually(Effect.map(ending(sessionId), (e) => e.to === "expired"), "the session's end", 10_000)
      assert.deepStrictEqual(yield* ending(sessionId), { to: "expired", reason: "dtls_closed" })
    }))

  it.effect("a publisher that vanishes (SIGKILL): ICE consent is lost and the session expires, reason consent_lost", () =>
    Effect.gen(function*() {
      const base = yield* baseUrl
      const alice = yield* signIn(user("alice"))
      let killedAt = 0
      const run = yield* Effect.promise(() =>
        runWhipPublish({
          url: `${base}/whip`,
          token: alice.token,
          wav: sentWav,
          onEvent: (event, kill) => {
            if (event.event !== "published") return
            killedAt = Date.now()
            kill("SIGKILL")
          }
        })
      )
      const sessionId = String(findEvent(run, "published")?.["sessionId"])
      yield* eventually(Effect.map(ending(sessionId), (e) => e.to === "expired"), "the session's end", (CONSENT_SECONDS + 10) * 1000)
      assert.deepStrictEqual(yield* ending(sessionId), { to: "expired", reason: "consent_lost" })
      console.log(`aiortc WHIP publisher killed: session expired ${((Date.now() - killedAt) / 1000).toFixed(1)} s later`)
    }))

  it.effect("a publisher whose DTLS handshake fails (its offer's fingerprint does not match its certificate): the session expires, reason dtls_failed", () =>
    Effect.gen(function*() {
      const base = yield* baseUrl
      const alice = yield* signIn(user("alice"))
      const run = yield* Effect.promise(() =>
        runWhipPublish({ url: `${base}/whip`, token: alice.token, wav: sentWav, wrongFingerprint: true, connectTimeoutSeconds: 8 })
      )
      // aiortc, the DTLS client, finishes its side of the handshake and calls itself connected; mediasoup then refuses it.
      assert.isNotNull(run.code, describeRun(run))
      const listed = yield* request("GET", "/api/sessions", undefined, alice.headers)
      const [session] = list(listed.json["sessions"])
      const sessionId = String(record(session)["id"])
      yield* eventually(Effect.map(ending(sessionId), (e) => e.to === "expired"), "the session's end", 10_000)
      assert.deepStrictEqual(yield* ending(sessionId), { to: "expired", reason: "dtls_failed" })
    }))
})
