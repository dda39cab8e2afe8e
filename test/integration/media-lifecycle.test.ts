import { assert, it } from "@effect/vitest"
import { Effect, Layer, Option, Stream } from "effect"
import { Health } from "../../src/layers/Health.ts"
import { type MediaFact, MediaServer } from "../../src/layers/MediaServer.ts"
import { Metrics } from "../../src/layers/Metrics.ts"
import { request, signIn } from "../support/auth.ts"
import { testConfig } from "../support/http.ts"
import { eventually, mediaServer, startSession, user } from "../support/media.ts"

/** MediaServer with nothing of the session services beneath it: no store, no events, no programs. */
const MediaOnly = MediaServer.layer.pipe(
  Layer.provide(Layer.mergeAll(Health.layer, Metrics.layer)),
  Layer.provide(testConfig({ MEDIASOUP_WORKERS: "2", RTC_MIN_PORT: "41175", RTC_MAX_PORT: "41199" }))
)

const workerOf = (id: string) => Effect.map(MediaServer.use((m) => m.status), (s) => s.sessions.find((x) => x.id === id)?.worker ?? -1)

it.effect("MediaServer on its own states facts and decides nothing: media opened, a worker died with the sessions it carried", () =>
  Effect.gen(function*() {
    const media = yield* MediaServer
    const seen: Array<MediaFact> = []
    yield* (yield* media.facts).pipe(Stream.runForEach((fact) => Effect.sync(() => seen.push(fact))), Effect.forkScoped)
    yield* media.rtpCapabilities("on-victim")
    yield* media.rtpCapabilities("on-survivor")
    const [victim, survivor] = [yield* workerOf("on-victim"), yield* workerOf("on-survivor")]
    assert.notStrictEqual(victim, survivor)
    yield* eventually(Effect.sync(() => seen.length === 2), "two MediaOpened facts")
    assert.deepStrictEqual(seen, [
      { _tag: "MediaOpened", sessionId: "on-victim", worker: victim },
      { _tag: "MediaOpened", sessionId: "on-survivor", worker: survivor }
    ])

    const pid = (yield* media.workers)[victim]?.pid ?? -1
    process.kill(pid, "SIGKILL")
    yield* eventually(Effect.sync(() => seen.length === 3), "the WorkerDied fact")
    assert.deepInclude(seen[2], { _tag: "WorkerDied", worker: victim, pid, sessions: ["on-victim"] })
    // Its media went with the worker; the other session's media is untouched.
    assert.isTrue(Option.isNone(yield* media.router("on-victim")))
    assert.isFalse((yield* media.router("on-survivor")).pipe(Option.map((r) => r.closed), Option.getOrElse(() => true)))
  }).pipe(Effect.scoped, Effect.provide(MediaOnly)), 60_000)

it.effect("the lifecycle program closes media opened for a session that had already ended", () =>
  Effect.gen(function*() {
    const media = yield* MediaServer
    const frank = yield* signIn(user("frank"))
    const id = yield* startSession(frank.headers)
    const stopped = yield* request("POST", `/api/session/${id}/stop`, undefined, frank.headers)
    assert.strictEqual(stopped.status, 200, stopped.text)
    // Straight to MediaServer (signaling would refuse an ended session): the router is made all the same.
    yield* media.rtpCapabilities(id)
    yield* eventually(Effect.map(media.router(id), Option.isNone), "the ended session's media to close")
  }).pipe(Effect.provide(mediaServer({ MEDIASOUP_WORKERS: "1", RTC_MIN_PORT: "41150", RTC_MAX_PORT: "41174" }))), 60_000)
