import { assert, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { activateSession } from "../../src/programs/sessions/activate.ts"
import { request, signIn, str } from "../support/auth.ts"
import { scopedChromium } from "../support/chromium.ts"
import { baseUrl } from "../support/http.ts"
import { eventually, mediaServer, startSession, user } from "../support/media.ts"

/**
 * The session events stream (SSE): an ended session answers 204 so a browser's EventSource stops
 * reconnecting (measured with Debian's Chromium), and open streams are capped per session and user.
 */

const Server = mediaServer({
  MEDIASOUP_WORKERS: "1",
  RTC_MIN_PORT: "47440",
  RTC_MAX_PORT: "47459",
  MAX_SSE_STREAMS_PER_SESSION: "2",
  MAX_SSE_STREAMS_PER_USER: "3"
})

/** An open stream (fetch), its text so far, and a way to close it. */
const open = (id: string, token: string) =>
  Effect.gen(function*() {
    const url = yield* baseUrl
    const abort = new AbortController()
    const response = yield* Effect.promise(() => fetch(`${url}/api/webrtc/${id}/events?access_token=${token}`, { signal: abort.signal }))
    let text = ""
    let ended = false
    if (response.status === 200 && response.body !== null) {
      const reader = response.body.getReader()
      const decoder = new TextDecoder()
      void (async () => {
        try {
          for (;;) {
            const { done, value } = await reader.read()
            if (done) break
            text += decoder.decode(value)
          }
        } catch {
          // aborted
        }
        ended = true
      })()
    }
    return { status: response.status, response, text: () => text, ended: () => ended, close: () => abort.abort() }
  })

interface Probe {
  opens: number
  errors: number
  states: Array<string>
  source: EventSource
}
declare global {
  interface Window {
    sseProbe?: Probe
  }
}

const chromium = scopedChromium("/dev/null")
const Chromium = chromium.layer

/** EventSource in a Chromium page on the server's origin, for `ms`: how often it opened, the state events, and its final readyState. */
const inChromium = <R>(path: string, ms: number, during: Effect.Effect<void, never, R>) =>
  Effect.gen(function*() {
    const base = yield* baseUrl
    const running = chromium.current()
    if (running === undefined) return yield* Effect.die("no browser")
    // /health is an API answer (CSP `default-src 'none'`, which blocks EventSource); this test is about reconnects, not CSP.
    const page = yield* Effect.promise(() => running.newPage({ bypassCSP: true }))
    yield* Effect.promise(() => page.goto(`${base}/health`))
    yield* Effect.promise(() =>
      page.evaluate((url) => {
        const source = new EventSource(url)
        const probe: Probe = { opens: 0, errors: 0, states: [], source }
        window.sseProbe = probe
        source.onopen = () => void probe.opens++
        source.onerror = () => void probe.errors++
        source.addEventListener("state", (e) => {
          if (e instanceof MessageEvent && typeof e.data === "string") probe.states.push(String(JSON.parse(e.data).state))
        })
      }, path)
    )
    yield* Effect.promise(() => new Promise((r) => setTimeout(r, 1000)))
    yield* during
    yield* Effect.promise(() => new Promise((r) => setTimeout(r, ms)))
    const probe = yield* Effect.promise(() =>
      page.evaluate(() => {
        const p = window.sseProbe
        return { opens: p?.opens ?? -1, errors: p?.errors ?? -1, states: p?.states ?? [], readyState: p?.source.readyState ?? -1 }
      })
    )
    yield* Effect.promise(() => page.close())
    return probe
  })

layer(Layer.mergeAll(Server, Chromium), { timeout: 120_000 })("session events (SSE)", (it) => {
  it.effect("/openapi.json documents the events stream: text/event-stream, its event types, 204 for an ended session", () =>
    Effect.gen(function*() {
      const doc = yield* request("GET", "/openapi.json")
      assert.strictEqual(doc.status, 200)
      const paths = doc.json["paths"]
      const get = JSON.parse(JSON.stringify(paths))["/api/webrtc/{sessionId}/events"]?.get
      assert.isDefined(get, "the events path")
      const ok = get.responses["200"].content["text/event-stream"]
      assert.deepStrictEqual(Object.keys(ok["x-events"]).sort(), ["state", "transcript"])
      assert.include(JSON.stringify(ok["x-events"].state), "completed")
      assert.isDefined(get.responses["204"])
      const tags: ReadonlyArray<{ name: string }> = JSON.parse(JSON.stringify(doc.json["tags"] ?? []))
      assert.isTrue(tags.some((t) => t.name === get.tags[0]), `tag ${get.tags[0]} exists`)
      const schemes = JSON.parse(JSON.stringify(doc.json["components"])).securitySchemes
      assert.deepStrictEqual(Object.keys(get.security[0]), ["bearer"])
      assert.isDefined(schemes["bearer"], "security scheme exists")
    }))

  it.effect("Chromium's EventSource on an ended session: 204, no reconnects", () =>
    Effect.gen(function*() {
      const alice = yield* signIn(user("alice"))
      const id = yield* startSession(alice.headers)
      assert.strictEqual((yield* request("POST", `/api/session/${id}/stop`, undefined, alice.headers)).status, 200)
      const direct = yield* open(id, alice.token)
      assert.strictEqual(direct.status, 204)
      const probe = yield* inChromium(`/api/webrtc/${id}/events?access_token=${alice.token}`, 8000, Effect.void)
      console.log(`sse-ended opens=${probe.opens} errors=${probe.errors} readyState=${probe.readyState}`)
      assert.strictEqual(probe.opens, 0)
      assert.strictEqual(probe.errors, 1)
      assert.strictEqual(probe.readyState, 2) // CLOSED: the browser gave up
    }))

  it.effect("Chromium's EventSource while the session ends: the final state arrives, then one reconnect gets 204 and it stops", () =>
    Effect.gen(function*() {
      const bob = yield* signIn(user("bob"))
      const id = yield* startSession(bob.headers)
      yield* activateSession(id)
      const stop = Effect.asVoid(Effect.orDie(request("POST", `/api/session/${id}/stop`, undefined, bob.headers)))
      const probe = yield* inChromium(`/api/webrtc/${id}/events?access_token=${bob.token}`, 8000, stop)
      console.log(`sse-ending opens=${probe.opens} errors=${probe.errors} states=${probe.states.join(">")} readyState=${probe.readyState}`)
      assert.deepStrictEqual(probe.states, ["active", "completed"])
      assert.strictEqual(probe.opens, 1)
      assert.strictEqual(probe.readyState, 2)
    }))

  it.effect("streams are capped per session and per user (429 naming the limit); a closed stream frees its place", () =>
    Effect.gen(function*() {
      const carol = yield* signIn(user("carol"))
      const a = yield* startSession(carol.headers)
      const b = yield* startSession(carol.headers)
      const a1 = yield* open(a, carol.token)
      const a2 = yield* open(a, carol.token)
      assert.deepStrictEqual([a1.status, a2.status], [200, 200])
      const a3 = yield* open(a, carol.token)
      assert.strictEqual(a3.status, 429)
      const body = yield* Effect.promise(() => a3.response.json())
      assert.strictEqual(body.limit, "MAX_SSE_STREAMS_PER_SESSION")
      const b1 = yield* open(b, carol.token)
      assert.strictEqual(b1.status, 200)
      const b2 = yield* open(b, carol.token)
      assert.strictEqual(b2.status, 429)
      assert.strictEqual((yield* Effect.promise(() => b2.response.json())).limit, "MAX_SSE_STREAMS_PER_USER")
      // Another user is not affected.
      const dave = yield* signIn(user("dave"))
      const d1 = yield* open(yield* startSession(dave.headers), dave.token)
      assert.strictEqual(d1.status, 200)
      a1.close()
      yield* eventually(
        Effect.map(open(b, carol.token), (r) => {
          if (r.status === 200) r.close()
          return r.status === 200
        }),
        "a place freed by the closed stream",
        5000
      )
      // A stream ends after the session's final state.
      yield* Effect.orDie(request("POST", `/api/session/${a}/stop`, undefined, carol.headers))
      yield* eventually(Effect.sync(() => a2.ended()), "the stream of the stopped session to end", 5000)
      assert.include(a2.text(), "event: state\ndata: {\"state\":\"completed\"}")
      for (const s of [b1, d1]) s.close()
      assert.strictEqual(str(a), a)
    }))

  it.effect("a burst of 50 concurrent connects on one session opens exactly MAX_SSE_STREAMS_PER_SESSION", () =>
    Effect.gen(function*() {
      const eve = yield* signIn(user("eve"))
      const id = yield* startSession(eve.headers)
      const all = yield* Effect.all(Array.from({ length: 50 }, () => open(id, eve.token)), { concurrency: "unbounded" })
      const statuses = all.map((s) => s.status)
      for (const s of all) s.close()
      assert.strictEqual(statuses.filter((s) => s === 200).length, 2, statuses.join(","))
      assert.strictEqual(statuses.filter((s) => s === 429).length, 48)
    }))
})
