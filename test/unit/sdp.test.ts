import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { getSupportedRtpCapabilities, type types } from "mediasoup"
import { parse, write } from "sdp-transform"
import type { MediaDescription } from "sdp-transform"
import { routerCodecs } from "../../src/layers/media/codecs.ts"
import { type TransportSide, writeAnswer } from "../../src/media/sdp/answer.ts"
import { receiveCapabilities } from "../../src/media/sdp/codecs.ts"
import { isSending, planIngest, plannedAnswers } from "../../src/media/sdp/ingest-plan.ts"
import { type Offer, parseOffer } from "../../src/media/sdp/offer.ts"
import { parseFragment } from "../../src/media/sdp/trickle.ts"

/**
 * SDP <-> mediasoup translation: real offers captured from Chromium, Firefox, GStreamer
 * webrtcbin, aiortc and libdatachannel as OBS uses it (test/fixtures/sdp, provenance in its README), and generated offers:
 * every answer parses, answers every offered m-line in order with the same mid, the complementary
 * direction, payload types the offer named, and bundles exactly the accepted m-lines.
 */

/** The router's capabilities as mediasoup derives them: our codecs with their feedback, dynamic payload types from 100. */
const routerCaps = (): types.RtpCapabilities => {
  const supported = getSupportedRtpCapabilities()
  const codecs = routerCodecs().map((c, i): types.RtpCodecCapability => {
    const known = (supported.codecs ?? []).find((s) => s.mimeType.toLowerCase() === c.mimeType.toLowerCase() && s.clockRate === c.clockRate)
    return { ...c, preferredPayloadType: 100 + i, rtcpFeedback: known?.rtcpFeedback ?? [] }
  })
  return { codecs, headerExtensions: supported.headerExtensions ?? [] }
}
const CAPS = routerCaps()

const SIDE: TransportSide = {
  ice: { usernameFragment: "srvufrag", password: "srvpassword0123456789", iceLite: true },
  candidates: [{ foundation: "udpcandidate", priority: 1076302079, ip: "127.0.0.1", address: "127.0.0.1", protocol: "udp", port: 40000, type: "host" }],
  fingerprint: { algorithm: "sha-256", value: "AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99" },
  setup: "passive"
}

const complement = { sendonly: "recvonly", sendrecv: "recvonly", recvonly: "sendonly", inactive: "inactive" } as const

/** The checks every WHIP answer to `offer` must pass. */
const checkAnswer = (offer: Offer, answerText: string) => {
  const answer = parse(answerText)
  const media = answer.media
  assert.strictEqual(media.length, offer.media.length, "one answered m-line per offered m-line")
  const accepted: Array<string> = []
  offer.media.forEach((o, i) => {
    const a = media[i]
    if (a === undefined) return assert.fail(`m-line ${i} missing`)
    assert.strictEqual(a.type, o.kind)
    assert.strictEqual(String(a.mid), o.mid)
    if (a.port === 0) return
    accepted.push(o.mid)
    assert.strictEqual(a.direction, complement[o.direction])
    const offered = new Set(o.codecs.map((c) => c.payloadType))
    for (const rtp of a.rtp) assert.isTrue(offered.has(rtp.payload), `answered payload type ${rtp.payload} was offered`)
    assert.isAbove(a.rtp.length, 0)
    assert.strictEqual(a.setup, "passive")
    assert.isDefined(a.fingerprint)
  })
  const bundle = (answer.groups ?? []).find((g) => g.type === "BUNDLE")
  if (offer.bundle.length === 0) assert.isUndefined(bundle, "no BUNDLE group in the answer when the offer had none")
  else assert.deepStrictEqual(String(bundle?.mids ?? "").split(" ").filter((m) => m.length > 0), accepted)
  assert.strictEqual(answer.icelite, "ice-lite")
}

const fixtures = join(import.meta.dirname, "../fixtures/sdp")
const files = readdirSync(fixtures)

describe("captured offers", () => {
  const offers = files.filter((f) => f.endsWith(".sdp"))
  // OBS 30+ is not in Debian: its WHIP output's offers are made with libdatachannel, called as OBS calls it (README there).
  it("covers Chromium, Firefox, GStreamer webrtcbin, aiortc and libdatachannel (OBS)", () => {
    for (const client of ["chromium", "firefox", "gstreamer", "aiortc", "libdatachannel"]) {
      assert.isTrue(offers.some((f) => f.startsWith(client)), `a fixture from ${client}`)
    }
  })
  for (const file of offers) {
    it(file, () => {
      const parsed = parseOffer(readFileSync(join(fixtures, file), "utf8"))
      if (!parsed.ok) return assert.fail(parsed.problem.detail)
      const offer = parsed.value
      if (/recvonly/.test(file)) {
        // A WHEP player's offer: every m-line receives, and the audio one takes Opus.
        assert.isTrue(offer.media.every((m) => !isSending(m)))
        const audio = offer.media.find((m) => m.kind === "audio")
        assert.isTrue((receiveCapabilities(audio ?? offer.media[0]!).codecs ?? []).some((c) => c.mimeType.toLowerCase() === "audio/opus"))
        return
      }
      const plan = planIngest(offer, CAPS)
      if (!plan.ok) return assert.fail(plan.problem.detail)
      const audio = plan.value.find((p) => p?.kind === "audio")
      assert.strictEqual(audio?.rtpParameters.codecs[0]?.mimeType.toLowerCase(), "audio/opus", "audio is taken as Opus")
      if (/video/.test(file)) assert.isTrue(plan.value.some((p) => p?.kind === "video"), "video is taken")
      checkAnswer(offer, writeAnswer(offer, plannedAnswers(plan.value), SIDE))
    })
  }
  for (const file of files.filter((f) => f.endsWith(".sdpfrag"))) {
    it(file, () => {
      const fragment = parseFragment(readFileSync(join(fixtures, file), "utf8"))
      assert.isDefined(fragment)
      assert.isAbove(fragment?.candidates.length ?? 0, 0)
    })
  }
})

describe("refused offers name what is missing", () => {
  const base = () => readFileSync(join(fixtures, files.find((f) => /^chromium.*-audio\.sdp$/.test(f)) ?? "missing"), "utf8")
  const both = () => readFileSync(join(fixtures, files.find((f) => /^chromium.*-audio-video\.sdp$/.test(f)) ?? "missing"), "utf8")
  const problem = (sdp: string) => {
    const parsed = parseOffer(sdp)
    if (!parsed.ok) return parsed.problem
    const plan = planIngest(parsed.value, CAPS)
    return plan.ok ? undefined : plan.problem
  }
  it("not SDP at all", () => assert.strictEqual(problem("hello")?.kind, "malformed"))
  it("two m-lines without BUNDLE", () => assert.match(problem(both().replace(/a=group:BUNDLE[^\r\n]*\r?\n/, ""))?.detail ?? "", /BUNDLE/))
  it("no fingerprint", () => assert.match(problem(base().replace(/a=fingerprint:[^\r\n]*\r?\n/g, ""))?.detail ?? "", /fingerprint/))
  it("no ICE credentials", () => assert.match(problem(base().replace(/a=ice-(ufrag|pwd):[^\r\n]*\r?\n/g, ""))?.detail ?? "", /ice-ufrag/))
  it("no common codec", () => {
    const noOpus = write({ ...parse(base()), media: parse(base()).media.map((m) => ({ ...m, rtp: m.rtp.filter((r) => !/opus/i.test(r.codec)) })) })
    assert.match(problem(noOpus)?.detail ?? "", /no common codec/)
  })
  it("nothing sent", () => assert.match(problem(base().replace(/a=sendonly/g, "a=recvonly"))?.detail ?? "", /sends no audio or video/))
})

// ---- generated offers --------------------------------------------------------------------------

const AUDIO = [
  { codec: "opus", rate: 48000, encoding: 2, config: "minptime=10;useinbandfec=1" },
  { codec: "G722", rate: 8000 },
  { codec: "PCMU", rate: 8000 }
] as const
const VIDEO = [
  { codec: "VP8", rate: 90000 },
  { codec: "VP9", rate: 90000, config: "profile-id=0" },
  { codec: "VP9", rate: 90000, config: "profile-id=2" },
  { codec: "H264", rate: 90000, config: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f" },
  { codec: "H264", rate: 90000, config: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640034" },
  { codec: "AV1", rate: 90000 }
] as const
const EXTENSIONS = [
  "urn:ietf:params:rtp-hdrext:sdes:mid",
  "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
  "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
  "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
  "urn:example:unknown-extension"
]

const mLine = fc.record({
  kind: fc.constantFrom("audio", "video", "application"),
  direction: fc.constantFrom("sendonly", "sendrecv", "recvonly", "inactive"),
  codecs: fc.subarray([0, 1, 2, 3, 4, 5], { minLength: 1 }),
  rtx: fc.boolean(),
  extensions: fc.subarray([0, 1, 2, 3, 4]),
  ssrc: fc.option(fc.integer({ min: 1, max: 2 ** 32 - 1 }), { nil: undefined })
})

/** An offer as a browser would write it, from generated m-lines (payload types dynamic and unique, rtx right after its codec). */
type Line = typeof mLine extends fc.Arbitrary<infer L> ? L : never
const offerText = (lines: ReadonlyArray<Line>) => {
  let pt = 96
  const media: Array<MediaDescription> = lines.map((l, i) => {
    const table = l.kind === "audio" ? AUDIO : VIDEO
    const rtp: MediaDescription["rtp"] = []
    const fmtp: MediaDescription["fmtp"] = []
    for (const index of l.codecs) {
      const c = table[index % table.length]
      if (c === undefined) continue
      const payload = pt++
      rtp.push({ payload, codec: c.codec, rate: c.rate, ...("encoding" in c ? { encoding: c.encoding } : {}) })
      if ("config" in c) fmtp.push({ payload, config: c.config })
      if (l.kind === "video" && l.rtx) {
        const rtx = pt++
        rtp.push({ payload: rtx, codec: "rtx", rate: 90000 })
        fmtp.push({ payload: rtx, config: `apt=${payload}` })
      }
    }
    if (l.kind === "application") {
      return { type: "application", port: 9, protocol: "UDP/DTLS/SCTP", payloads: "webrtc-datachannel", mid: String(i), rtp: [], fmtp: [] }
    }
    return {
      type: l.kind,
      port: 9,
      protocol: "UDP/TLS/RTP/SAVPF",
      payloads: rtp.map((r) => r.payload).join(" "),
      mid: String(i),
      direction: l.direction === "sendonly" ? "sendonly" : l.direction === "sendrecv" ? "sendrecv" : l.direction === "recvonly" ? "recvonly" : "inactive",
      rtp,
      fmtp,
      rtcpFb: rtp.filter((r) => r.codec !== "rtx").map((r) => ({ payload: String(r.payload), type: "nack" })),
      ext: l.extensions.map((e, n) => ({ value: n + 1, uri: EXTENSIONS[e] ?? "" })),
      ...(l.ssrc === undefined ? {} : { ssrcs: [{ id: l.ssrc, attribute: "cname", value: "generated" }] }),
      rtcpMux: "rtcp-mux"
    }
  })
  return write({
    version: 0,
    origin: { username: "-", sessionId: 1, sessionVersion: 2, netType: "IN", ipVer: 4, address: "127.0.0.1" },
    name: "-",
    timing: { start: 0, stop: 0 },
    groups: [{ type: "BUNDLE", mids: media.map((m) => String(m.mid)).join(" ") }],
    iceUfrag: "cliufrag",
    icePwd: "clientpassword0123456789",
    fingerprint: { type: "sha-256", hash: SIDE.fingerprint.value },
    setup: "actpass",
    media
  })
}

describe("generated offers", () => {
  it("every translated answer parses and matches the offer's m-lines, mids and directions", () => {
    fc.assert(
      fc.property(fc.array(mLine, { minLength: 1, maxLength: 4 }), (lines) => {
        const parsed = parseOffer(offerText(lines))
        if (!parsed.ok) return assert.fail(parsed.problem.detail)
        const plan = planIngest(parsed.value, CAPS)
        // Refused only when no m-line sends Opus, or VP8 / VP9 profile 2 / H.264 of the router's profiles.
        const takeable = lines.some((l) =>
          (l.direction === "sendonly" || l.direction === "sendrecv") &&
          (l.kind === "audio" ? l.codecs.some((c) => c % AUDIO.length === 0) : l.kind === "video" && l.codecs.some((c) => [0, 2, 3].includes(c % VIDEO.length)))
        )
        assert.strictEqual(plan.ok, takeable)
        if (plan.ok) checkAnswer(parsed.value, writeAnswer(parsed.value, plannedAnswers(plan.value), SIDE))
      }),
      { numRuns: 300 }
    )
  })
})
