import { assert, it, layer } from "@effect/vitest"
import { Context, Effect, Layer, Option, Stream } from "effect"
import type { types } from "mediasoup"
import { Counter } from "prom-client"
import { MediaServer } from "../../src/layers/MediaServer.ts"
import { Metrics } from "../../src/layers/Metrics.ts"
import { PROVISIONING_KEY, record, request, signIn } from "../support/auth.ts"
import { capturedLogs } from "../support/http.ts"
import { eventually, mediaServer, opusRtpParameters, startSession, user } from "../support/media.ts"
import { ProducerId } from "../../src/schemas/ids.ts"

const logs = capturedLogs()
const Server = mediaServer({ MEDIASOUP_WORKERS: "2", RTC_MIN_PORT: "41000", RTC_MAX_PORT: "41099" }).pipe(Layer.provide(logs.layer))

const workerOf = (id: string) => Effect.map(MediaServer.use((m) => m.status), (s) => s.sessions.find((x) => x.id === id)?.worker)

const routerOf = (id: string) =>
  Effect.flatMap(MediaServer.use((m) => m.router(id)), (r) => Option.isSome(r) ? Effect.succeed(r.value) : Effect.die(`no router for ${id}`))

const routerIdsOf = (worker: types.Worker): Effect.Effect<ReadonlyArray<string>> => Effect.promise(() => worker.dump()).pipe(Effect.map((d) => d.routerIds))

const restarts = Effect.gen(function*() {
  const { registry } = yield* Metrics
  const counter = registry.getSingleMetric("auralink_media_worker_restarts_total")
  const value = yield* Effect.promise(async () => counter instanceof Counter ? (await counter.get()).values[0]?.value ?? 0 : 0)
  return value
})

/** A session with a WebRTC transport, a plain transport producing Opus and a server-side consumer. */
const withMedia = (headers: Record<string, string>) =>
  Effect.gen(function*() {
    const id = yield* startSession(headers)
    const webrtc = yield* request("POST", `/api/webrtc/${id}/transports`, undefined, headers)
    assert.strictEqual(webrtc.status, 201, webrtc.text)
    const plain = yield* request("POST", `/api/webrtc/${id}/plain-transports`, { comedia: true }, headers)
    assert.strictEqual(plain.status, 201, plain.text)
    const produced = yield* request("POST", `/api/webrtc/${id}/plain-transports/${String(plain.json["id"])}/produce`, {
      kind: "audio",
      rtpParameters: opusRtpParameters()
    }, headers)
    assert.strictEqual(produced.status, 201, produced.text)
    return { id, producerId: ProducerId.make(String(produced.json["producerId"])) }
  })

layer(Server, { timeout: 60_000 })("MediaServer (real mediasoup workers)", (it) => {
  it.effect("one router per session, on the least-loaded worker; the router offers Opus, VP8, VP9 and H.264", () =>
    Effect.gen(function*() {
      const media = yield* MediaServer
      const alice = yield* signIn(user("alice"))
      const [a, b, c] = [yield* startSession(alice.headers), yield* startSession(alice.headers), yield* startSession(alice.headers)]
      const caps = yield* media.rtpCapabilities(a)
      const mimes = (caps.codecs ?? []).map((codec) => codec.mimeType)
      for (const mime of ["audio/opus", "video/VP8", "video/VP9", "video/H264"]) assert.include(mimes, mime)
      assert.notInclude(mimes, "video/H265", "mediasoup dropped H.265 in 3.16.6")
      const h264 = (caps.codecs ?? []).filter((codec) => codec.mimeType === "video/H264").map((codec) => codec.parameters?.["profile-level-id"])
      assert.deepStrictEqual(h264, ["42e01f", "4d0032"])
      yield* media.rtpCapabilities(a) // same router again
      yield* media.rtpCapabilities(b)
      const wa = yield* workerOf(a)
      const wb = yield* workerOf(b)
      assert.notStrictEqual(wa, wb)
      const workers = yield* media.workers
      const routerA = yield* routerOf(a)
      assert.deepStrictEqual(yield* routerIdsOf(workers[wa ?? -1]!), [routerA.id])

      yield* media.closeSession(a)
      yield* media.rtpCapabilities(c)
      assert.strictEqual(yield* workerOf(c), wa, "c goes to the worker a left empty")
      yield* media.closeSession(b)
      yield* media.closeSession(c)
    }))

  it.effect("a session's transports, producers and consumers are closed when it stops or fails", () =>
    Effect.gen(function*() {
      const media = yield* MediaServer
      const bob = yield* signIn(user("bob"))
      const stopped = yield* withMedia(bob.headers)
      const failed = yield* withMedia(bob.headers)
      const consumer = yield* media.createDirectConsumer(stopped.id, stopped.producerId)
      const routers = { stopped: yield* routerOf(stopped.id), failed: yield* routerOf(failed.id) }
      // WebRTC + plain + the audio ingress's own DirectTransport and consumer (it consumes every audio producer) + this test's.
      const counts = (id: string) => Effect.map(media.status, (status) => status.sessions.find((s) => s.id === id))
      yield* eventually(Effect.map(counts(stopped.id), (c) => c?.transports === 4), "the ingress consumer of the session")
      assert.deepInclude(yield* counts(stopped.id), { transports: 4, producers: 1, consumers: 2 })
      const dump = yield* Effect.promise(() => routers.stopped.dump())
      assert.strictEqual(dump.transportIds.length, 4)

      const metrics = (yield* request("GET", "/metrics")).text
      assert.match(metrics, /auralink_media_transports\{kind="plain"\} [1-9]/)
      assert.match(metrics, /auralink_media_transports\{kind="direct"\} [1-9]/)
      assert.match(metrics, /auralink_media_producers\{kind="audio"\} [1-9]/)
      assert.match(metrics, /auralink_media_consumers\{kind="audio"\} [1-9]/)
      const section = record((yield* request("GET", "/status", undefined, { "x-provisioning-key": PROVISIONING_KEY })).json["media"])
      const [workers, sessions] = [section["workers"], section["sessions"]]
      assert.strictEqual(Array.isArray(workers) ? workers.length : -1, 2)
      assert.isTrue(Array.isArray(sessions) && sessions.some((x) => record(x)["id"] === stopped.id))

      const res = yield* request("POST", `/api/session/${stopped.id}/stop`, undefined, bob.headers)
      assert.strictEqual(res.status, 200, res.text)
      yield* eventually(Effect.sync(() => routers.stopped.closed), "the stopped session's router to close")
      assert.isTrue(consumer.consumer.closed && consumer.transport.closed)

      const { failSession } = yield* Effect.promise(() => import("../../src/programs/sessions/fail.ts"))
      yield* failSession(failed.id, "test failure")
      yield* eventually(Effect.sync(() => routers.failed.closed), "the failed session's router to close")

      const ids = new Set([routers.stopped.id, routers.failed.id])
      for (const worker of yield* media.workers) {
        assert.isFalse((yield* routerIdsOf(worker)).some((r) => ids.has(r)))
      }
      const after = yield* media.status
      assert.isFalse(after.sessions.some((s) => s.id === stopped.id || s.id === failed.id))
    }))

  it.effect("a killed worker is logged, counted and replaced; its sessions go to error, the others are untouched", () =>
    Effect.gen(function*() {
      const media = yield* MediaServer
      const carol = yield* signIn(user("carol"))
      const first = yield* withMedia(carol.headers)
      const second = yield* startSession(carol.headers)
      yield* media.rtpCapabilities(second)
      const victimIndex = (yield* workerOf(first.id)) ?? -1
      assert.notStrictEqual(yield* workerOf(second), victimIndex)
      const before = yield* restarts
      const victim = (yield* media.workers)[victimIndex]!
      const survivorRouter = yield* routerOf(second)

      process.kill(victim.pid, "SIGKILL")
      yield* eventually(
        Effect.map(media.status, (s) => s.workers[victimIndex]?.pid !== victim.pid && s.workers[victimIndex]?.pid !== 0),
        "a replacement worker"
      )
      assert.strictEqual(yield* restarts, before + 1)
      yield* eventually(
        Effect.map(request("GET", `/api/session/${first.id}`, undefined, carol.headers), (r) => r.json["state"] === "error"),
        "the session to go to error"
      )
      const failed = yield* request("GET", `/api/session/${first.id}`, undefined, carol.headers)
      assert.strictEqual(failed.json["error"], "media worker died")
      assert.isTrue(logs.lines.some((l) => l["event"] === "media_worker_died" && l["pid"] === victim.pid))
      assert.isTrue(Option.isNone(yield* media.router(first.id)))

      const survivor = yield* request("GET", `/api/session/${second}`, undefined, carol.headers)
      assert.strictEqual(survivor.json["state"], "pending")
      assert.isFalse(survivorRouter.closed)
      // The replacement takes new sessions.
      const third = yield* startSession(carol.headers)
      yield* media.rtpCapabilities(third)
      const replacement = (yield* media.workers)[victimIndex]!
      assert.isFalse(replacement.closed)
      assert.deepStrictEqual(yield* routerIdsOf(replacement), [(yield* routerOf(third)).id])
    }))
})

it.effect("layer shutdown closes every router, transport and worker", () =>
  Effect.gen(function*() {
    const held = yield* Effect.scoped(Effect.gen(function*() {
      const context = yield* Layer.build(mediaServer({ MEDIASOUP_WORKERS: "1", RTC_MIN_PORT: "41100", RTC_MAX_PORT: "41149" }))
      const media = Context.get(context, MediaServer)
      const seen = yield* Effect.provideContext(
        Effect.gen(function*() {
          const dave = yield* signIn(user("dave"))
          const { id, producerId } = yield* withMedia(dave.headers)
          const direct = yield* media.createDirectConsumer(id, producerId)
          const producers = yield* Stream.runCollect(Stream.take(media.onProducer(id), 1))
          assert.strictEqual(producers[0]?.id, producerId)
          return { router: yield* routerOf(id), direct }
        }),
        context
      )
      const workers = yield* media.workers
      return { ...seen, workers }
    }))
    assert.isTrue(held.router.closed)
    assert.isTrue(held.direct.transport.closed && held.direct.consumer.closed)
    for (const worker of held.workers) {
      assert.isTrue(worker.closed)
      yield* eventually(
        Effect.sync(() => {
          try {
            process.kill(worker.pid, 0)
            return false
          } catch {
            return true
          }
        }),
        "the worker process to exit"
      )
    }
  }), 60_000)
