import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { parse } from "sdp-transform"
import { bearer, record, request, signIn, str } from "../support/auth.ts"
import { eventually, mediaServer, user } from "../support/media.ts"

/**
 * WHIP (RFC 9725) and WHEP over the real HTTP server, mediasoup and Postgres, with offers captured
 * from Chromium (test/fixtures/sdp): every error status with what it names, the resource's
 * headers and life (PATCH trickle and ICE restart with ETags, DELETE), share tokens and the viewer
 * cap. Media itself flows in the interoperability tests (test/e2e/whip-*.test.ts).
 */

const fixture = (name: string) => readFileSync(join(import.meta.dirname, "../fixtures/sdp", name), "utf8")
const AUDIO_VIDEO = fixture("chromium-156-audio-video.sdp")
const AUDIO = fixture("chromium-156-audio.sdp")
const RECVONLY = fixture("chromium-156-whep-recvonly.sdp")

const STUN = "stun:stun.example.org:3478"
const TURN = "turn:turn.example.org:3478?transport=udp"
const Server = mediaServer({
  MEDIASOUP_WORKERS: "1",
  RTC_MIN_PORT: "41300",
  RTC_MAX_PORT: "41399",
  STUN_URLS: STUN,
  TURN_URLS: TURN,
  TURN_USERNAME: "turnuser",
  TURN_CREDENTIAL: "turn-secret",
  WHEP_MAX_VIEWERS: "2"
})

const sdp = (headers: Record<string, string>) => ({ ...headers, "content-type": "application/sdp" })
const frag = (headers: Record<string, string>) => ({ ...headers, "content-type": "application/trickle-ice-sdpfrag" })

/** POST /whip with `offer`; the response and, when 201, the resource path and session id. */
const publish = (headers: Record<string, string>, offer = AUDIO_VIDEO, path = "/whip") =>
  Effect.gen(function*() {
    const res = yield* request("POST", path, offer, sdp(headers))
    const location = res.headers.get("location") ?? ""
    const sessionId = /^\/whip\/sessions\/([^/]+)\//.exec(location)?.[1] ?? ""
    return { res, location, sessionId }
  })

const sessionState = (id: string, headers: Record<string, string>) =>
  Effect.map(request("GET", `/api/session/${id}`, undefined, headers), (r) => ({ state: str(r.json["state"]), body: r.json }))

/** A fragment as a trickling client sends one: its ICE credentials, the first mid and one candidate. */
const trickle = (ufrag: string, pwd: string) =>
  [`a=ice-ufrag:${ufrag}`, `a=ice-pwd:${pwd}`, "m=audio 9 UDP/TLS/RTP/SAVPF 0", "a=mid:0", "a=candidate:1 1 udp 2122260223 192.0.2.9 50000 typ host", ""].join(
    "\r\n"
  )
const offerUfrag = (offer: string) => /a=ice-ufrag:(\S+)/.exec(offer)?.[1] ?? ""

layer(Server, { timeout: 60_000, excludeTestServices: true })("WHIP and WHEP endpoints", (it) => {
  it.effect("OPTIONS tells what each endpoint takes", () =>
    Effect.gen(function*() {
      const post = yield* request("OPTIONS", "/whip")
      assert.strictEqual(post.status, 204)
      assert.strictEqual(post.headers.get("accept-post"), "application/sdp")
      const whep = yield* request("OPTIONS", "/whep/sessions/0f3c2b9e-8f55-4d0a-9a51-3a1f0f0e2a11")
      assert.strictEqual(whep.headers.get("accept-post"), "application/sdp")
    }))

  it.effect("201: the answer, Location, ETag and ICE servers; the offer's audio and video become producers and the session is active", () =>
    Effect.gen(function*() {
      const alice = yield* signIn(user("alice"))
      const { location, res, sessionId } = yield* publish(alice.headers)
      assert.strictEqual(res.status, 201, res.text)
      assert.match(res.headers.get("content-type") ?? "", /^application\/sdp/)
      assert.match(location, /^\/whip\/sessions\/[0-9a-f-]{36}\/[0-9a-f-]{36}$/)
      assert.match(res.headers.get("etag") ?? "", /^"[^"]+"$/)
      const link = res.headers.get("link") ?? ""
      assert.include(link, `<${STUN}>; rel="ice-server"`)
      assert.include(link, `<${TURN}>; rel="ice-server"; username="turnuser"; credential="turn-secret"; credential-type="password"`)
      const answer = parse(res.text)
      assert.deepStrictEqual(answer.media.map((m) => [m.type, m.direction]), [["audio", "recvonly"], ["video", "recvonly"]])
      assert.strictEqual(answer.icelite, "ice-lite")
      assert.isAbove(answer.media[0]?.candidates?.length ?? 0, 0)
      assert.strictEqual((yield* sessionState(sessionId, alice.headers)).state, "active")
    }))

  it.effect("POST /whip/sessions/:id publishes into the caller's pending session; another user's is 403, an unknown one 404", () =>
    Effect.gen(function*() {
      const alice = yield* signIn(user("alice"))
      const bob = yield* signIn(user("bob"))
      const started = yield* request("POST", "/api/session", {}, alice.headers)
      const id = str(started.json["id"])
      const forbidden = yield* publish(bob.headers, AUDIO, `/whip/sessions/${id}`)
      assert.strictEqual(forbidden.res.status, 403, forbidden.res.text)
      const unknown = yield* publish(alice.headers, AUDIO, "/whip/sessions/0f3c2b9e-8f55-4d0a-9a51-3a1f0f0e2a11")
      assert.strictEqual(unknown.res.status, 404)
      const ok = yield* publish(alice.headers, AUDIO, `/whip/sessions/${id}`)
      assert.strictEqual(ok.res.status, 201, ok.res.text)
      assert.strictEqual(ok.sessionId, id)
    }))

  it.effect("401 without a valid bearer; 415 for another content type (with Accept-Post)", () =>
    Effect.gen(function*() {
      const none = yield* request("POST", "/whip", AUDIO, { "content-type": "application/sdp" })
      assert.strictEqual(none.status, 401)
      assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer/)
      const bad = yield* request("POST", "/whip", AUDIO, sdp(bearer("not-a-token")))
      assert.strictEqual(bad.status, 401)
      const alice = yield* signIn(user("alice"))
      const json = yield* request("POST", "/whip", AUDIO, { ...alice.headers, "content-type": "application/json" })
      assert.strictEqual(json.status, 415)
      assert.strictEqual(json.headers.get("accept-post"), "application/sdp")
    }))

  describe("unusable offers are refused naming what is missing, and change nothing", () => {
    const cases: ReadonlyArray<readonly [string, string, number, RegExp]> = [
      ["malformed", "this is not SDP", 400, /v=0/],
      ["no fingerprint", AUDIO.replace(/a=fingerprint:[^\r\n]*\r\n/g, ""), 422, /fingerprint/],
      ["no BUNDLE for two m-lines", AUDIO_VIDEO.replace(/a=group:BUNDLE[^\r\n]*\r\n/, ""), 422, /BUNDLE/],
      ["no audio or video sent", AUDIO.replace(/a=sendonly/g, "a=recvonly"), 422, /sends no audio or video/],
      ["no common codec", AUDIO.replace(/ opus\/48000\/2/i, " L16/48000/2"), 422, /no common codec/]
    ]
    for (const [name, offer, status, detail] of cases) {
      it.effect(name, () =>
        Effect.gen(function*() {
          const alice = yield* signIn(user("alice"))
          const { res } = yield* publish(alice.headers, offer)
          assert.strictEqual(res.status, status, res.text)
          assert.match(res.headers.get("content-type") ?? "", /problem\+json/)
          assert.match(str(res.json["detail"]), detail)
          const sessions = yield* request("GET", "/api/sessions", undefined, alice.headers)
          assert.deepStrictEqual(sessions.json["sessions"], [], "no session was made")
        }))
    }
  })

  it.effect("PATCH: trickle 204, ICE restart 200 with new credentials and ETag, stale ETag 412, wrong type 415, unknown 404, stranger 403", () =>
    Effect.gen(function*() {
      const alice = yield* signIn(user("alice"))
      const bob = yield* signIn(user("bob"))
      const { location, res } = yield* publish(alice.headers)
      const etag = res.headers.get("etag") ?? ""
      const ufrag = offerUfrag(AUDIO_VIDEO)
      const pwd = /a=ice-pwd:(\S+)/.exec(AUDIO_VIDEO)?.[1] ?? ""

      assert.strictEqual((yield* request("PATCH", location, trickle(ufrag, pwd), frag(alice.headers))).status, 204)
      assert.strictEqual((yield* request("PATCH", location, trickle(ufrag, pwd), alice.headers)).status, 415)
      assert.strictEqual((yield* request("PATCH", location, trickle(ufrag, pwd), frag(bob.headers))).status, 403)
      const wrong = yield* request("PATCH", location, trickle(ufrag, pwd), { ...frag(alice.headers), "if-match": "\"other\"" })
      assert.strictEqual(wrong.status, 412)

      const restarted = yield* request("PATCH", location, trickle("newufrag1", "newpassword0123456789abcd"), { ...frag(alice.headers), "if-match": etag })
      assert.strictEqual(restarted.status, 200, restarted.text)
      assert.match(restarted.headers.get("content-type") ?? "", /^application\/trickle-ice-sdpfrag/)
      const newEtag = restarted.headers.get("etag") ?? ""
      assert.notStrictEqual(newEtag, etag)
      const serverUfrag = /a=ice-ufrag:(\S+)/.exec(res.text)?.[1]
      const newServerUfrag = /a=ice-ufrag:(\S+)/.exec(restarted.text)?.[1]
      assert.isDefined(newServerUfrag)
      assert.notStrictEqual(newServerUfrag, serverUfrag)
      assert.match(restarted.text, /a=candidate:/)
      const stale = yield* request("PATCH", location, trickle("newufrag2", "newpassword0123456789abce"), { ...frag(alice.headers), "if-match": etag })
      assert.strictEqual(stale.status, 412)

      const unknown = location.replace(/[^/]+$/, "0f3c2b9e-8f55-4d0a-9a51-3a1f0f0e2a11")
      assert.strictEqual((yield* request("PATCH", unknown, trickle(ufrag, pwd), frag(alice.headers))).status, 404)
      const garbage = yield* request("PATCH", location, "hello\r\nworld", frag(alice.headers))
      assert.strictEqual(garbage.status, 400)
    }))

  it.effect("DELETE ends the session (completed); the resource is then gone (404)", () =>
    Effect.gen(function*() {
      const alice = yield* signIn(user("alice"))
      const bob = yield* signIn(user("bob"))
      const { location, sessionId } = yield* publish(alice.headers)
      assert.strictEqual((yield* request("DELETE", location, undefined, bob.headers)).status, 403)
      assert.strictEqual((yield* request("DELETE", location, undefined, alice.headers)).status, 200)
      assert.strictEqual((yield* sessionState(sessionId, alice.headers)).state, "completed")
      assert.strictEqual((yield* request("DELETE", location, undefined, alice.headers)).status, 404)
    }))

  it.effect("WHEP: the owner plays, a stranger is 403, a share token opens it, the viewer cap is 429, viewers are counted", () =>
    Effect.gen(function*() {
      const alice = yield* signIn(user("alice"))
      const bob = yield* signIn(user("bob"))
      const { sessionId } = yield* publish(alice.headers)
      const path = `/whep/sessions/${sessionId}`

      assert.strictEqual((yield* request("POST", path, RECVONLY, sdp(bob.headers))).status, 403)
      assert.strictEqual((yield* request("POST", path, RECVONLY, sdp(bearer("junk")))).status, 401)
      const own = yield* request("POST", path, RECVONLY, sdp(alice.headers))
      assert.strictEqual(own.status, 201, own.text)
      const answer = parse(own.text)
      const sent = answer.media.filter((m) => m.port !== 0)
      assert.deepStrictEqual(sent.map((m) => [m.type, m.direction]), [["audio", "sendonly"], ["video", "sendonly"]])
      assert.isTrue(sent.every((m) => (m.ssrcs ?? []).some((s) => s.attribute === "cname")), "each track names its SSRC")
      assert.match(own.headers.get("location") ?? "", new RegExp(`^/whep/sessions/${sessionId}/[0-9a-f-]{36}$`))

      const shared = yield* request("POST", `/api/session/${sessionId}/share`, { ttlSeconds: 60 }, alice.headers)
      assert.strictEqual(shared.status, 201, shared.text)
      assert.strictEqual(str(shared.json["whepUrl"]), path)
      assert.strictEqual((yield* request("POST", `/api/session/${sessionId}/share`, null, bob.headers)).status, 403)
      const viaShare = yield* request("POST", path, RECVONLY, sdp(bearer(str(shared.json["token"]))))
      assert.strictEqual(viaShare.status, 201, viaShare.text)

      const status = yield* request("GET", "/status")
      assert.isAtLeast(Number(record(status.json["whip"])["viewers"]), 2)
      const third = yield* request("POST", path, RECVONLY, sdp(alice.headers))
      assert.strictEqual(third.status, 429, third.text)
      assert.match(str(third.json["detail"]), /WHEP_MAX_VIEWERS/)

      // Firefox offers Opus at payload type 109 (Chromium 111): the answer sends at the viewer's own type.
      yield* request("DELETE", viaShare.headers.get("location") ?? "", undefined, bearer(str(shared.json["token"])))
      const firefox = yield* request("POST", path, fixture("firefox-153-whep-recvonly.sdp"), sdp(alice.headers))
      assert.strictEqual(firefox.status, 201, firefox.text)
      const audio = parse(firefox.text).media.find((m) => m.type === "audio")
      assert.deepStrictEqual(audio?.rtp.map((r) => [r.payload, r.codec.toLowerCase()]), [[109, "opus"]])
      const video = parse(firefox.text).media.find((m) => m.type === "video" && m.port !== 0)
      assert.strictEqual(video?.rtp[0]?.payload, 120, "VP8 at Firefox's 120")
      yield* request("DELETE", firefox.headers.get("location") ?? "", undefined, alice.headers)

      // A viewer's DELETE ends only the viewer: the publisher's session goes on.
      assert.strictEqual((yield* request("DELETE", own.headers.get("location") ?? "", undefined, alice.headers)).status, 200)
      assert.strictEqual((yield* sessionState(sessionId, alice.headers)).state, "active")
      assert.strictEqual((yield* request("POST", path, RECVONLY, sdp(alice.headers))).status, 201)
    }))

  it.effect("WHEP_MAX_VIEWERS holds against offers at the same instant: of 5 concurrent viewers, exactly 2 are let in", () =>
    Effect.gen(function*() {
      const alice = yield* signIn(user("alice"))
      const { sessionId } = yield* publish(alice.headers)
      const tries = yield* Effect.forEach(
        [1, 2, 3, 4, 5],
        () => Effect.map(request("POST", `/whep/sessions/${sessionId}`, RECVONLY, sdp(alice.headers)), (r) => r.status),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual([...tries].sort(), [201, 201, 429, 429, 429])
    }))

  it.effect("WHEP asking for audio and video of an audio-only session: the video m-line is refused, the audio plays", () =>
    Effect.gen(function*() {
      const alice = yield* signIn(user("alice"))
      const { sessionId } = yield* publish(alice.headers, AUDIO)
      const res = yield* request("POST", `/whep/sessions/${sessionId}`, RECVONLY, sdp(alice.headers))
      assert.strictEqual(res.status, 201, res.text)
      assert.deepStrictEqual(parse(res.text).media.map((m) => [m.type, m.port === 0 ? "refused" : m.direction]), [["audio", "sendonly"], ["video", "refused"]])
    }))

  it.effect("WHEP of a session with nothing to play is 409; of an unknown session 404", () =>
    Effect.gen(function*() {
      const alice = yield* signIn(user("alice"))
      const started = yield* request("POST", "/api/session", {}, alice.headers)
      const none = yield* request("POST", `/whep/sessions/${str(started.json["id"])}`, RECVONLY, sdp(alice.headers))
      assert.strictEqual(none.status, 409, none.text)
      const unknown = yield* request("POST", "/whep/sessions/0f3c2b9e-8f55-4d0a-9a51-3a1f0f0e2a11", RECVONLY, sdp(alice.headers))
      assert.strictEqual(unknown.status, 404)
    }))
})

layer(mediaServer({ MEDIASOUP_WORKERS: "1", RTC_MIN_PORT: "41400", RTC_MAX_PORT: "41449", WHIP_MEDIA_TIMEOUT_MS: "1000" }), {
  timeout: 30_000,
  excludeTestServices: true
})("WHIP media timeout", (it) => {
  it.effect("a publisher that sends no RTP for WHIP_MEDIA_TIMEOUT_MS ends its session (expired, no_media)", () =>
    Effect.gen(function*() {
      const alice = yield* signIn(user("alice"))
      const { res, sessionId } = yield* publish(alice.headers, AUDIO)
      assert.strictEqual(res.status, 201, res.text)
      yield* eventually(Effect.map(sessionState(sessionId, alice.headers), (s) => s.state === "expired"), "session expired", 8_000)
    }))
})
