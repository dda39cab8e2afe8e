import { afterEach, assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Schedule, Scope, Stream } from "effect"
import { createServer, type Socket } from "node:net"
import { makeAsrGateway } from "../../src/layers/AsrGateway.ts"
import { AppConfig } from "../../src/layers/Config.ts"
import { Health } from "../../src/layers/Health.ts"
import { Metrics } from "../../src/layers/Metrics.ts"
import type { SinkAudioChunk } from "../../src/schemas/asr.ts"
import { record } from "../support/auth.ts"
import { FakeAsrGateway, startFakeAsr } from "../support/fake-asr.ts"

/** 100 ms of 16 kHz s16le audio whose samples all carry `sequence`. */
const chunk = (sequence: number): SinkAudioChunk => {
  const pcm = new Int16Array(1600).fill(sequence % 32_000)
  return { sequence, captureTimeMs: 1_700_000_000_000 + sequence * 100, pcm: new Uint8Array(pcm.buffer) }
}
/** The sink stream of producer `p1` of `sessionId` (PCM path). */
const key = (sessionId: string) => ({ sessionId, producerId: "p1", path: "datachannel" as const })
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i)

const deps = (env: Record<string, string>) =>
  Layer.mergeAll(Health.layer, Metrics.layer).pipe(Layer.provideMerge(AppConfig.layerFrom({
    LOG_LEVEL: "error",
    ASR_DEADLINE_MS: "1000",
    ASR_RECONNECT_BASE_MS: "20",
    ASR_RECONNECT_MAX_MS: "200",
    ...env
  })))

/** Retries `probe` every 20 ms until it holds (up to `seconds`). */
const eventually = (probe: Effect.Effect<boolean>, seconds = 10) =>
  Effect.flatMap(probe, (ok) => ok ? Effect.void : Effect.fail("not yet")).pipe(
    Effect.retry(Schedule.spaced("20 millis")),
    Effect.timeout(`${seconds} seconds`),
    Effect.orDie
  )

const sameList = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) => a.length === b.length && a.every((x, i) => x === b[i])

/** Each stream (connection) delivers ascending sequences without gaps (replays restart lower, then continue). */
const assertInOrderPerStream = (fake: FakeAsrGateway, sessionId: string) => {
  const byStream = new Map<number, Array<number>>()
  for (const c of fake.chunks(sessionId)) byStream.set(c.stream, [...(byStream.get(c.stream) ?? []), c.sequence])
  for (const [stream, seqs] of byStream) {
    for (let i = 1; i < seqs.length; i++) {
      assert.strictEqual(seqs[i], seqs[i - 1]! + 1, `stream ${stream}: ${seqs[i - 1]} then ${seqs[i]}`)
    }
  }
}

const metric = (name: string) => Effect.flatMap(Metrics, ({ registry }) => Effect.promise(() => registry.getSingleMetricAsString(name)))

let fakes: Array<FakeAsrGateway> = []
afterEach(() => {
  for (const f of fakes) f.stop()
  fakes = []
})
const fake = () =>
  Effect.promise(async () => {
    const f = await startFakeAsr()
    fakes.push(f)
    return f
  })

describe("AsrGateway", () => {
  it.live("delivers chunks in order with no gaps and streams transcripts back", () =>
    Effect.gen(function*() {
      const asr = yield* fake()
      const gateway = yield* makeAsrGateway(asr.url)
      const stream = yield* gateway.openStream(key("s1"))
      const collected = yield* Effect.forkChild(Stream.runCollect(stream.transcripts))
      for (const n of range(0, 30)) yield* stream.send(chunk(n))
      yield* stream.close
      const transcripts = yield* Fiber.join(collected)
      assert.deepStrictEqual(asr.sequences("s1"), range(0, 30))
      assert.deepStrictEqual(asr.chunks("s1").map((c) => c.sequence), range(0, 30))
      const first = asr.chunks("s1")[7]!
      assert.strictEqual(first.sampleRate, 16_000)
      assert.strictEqual(first.captureTimeMs, 1_700_000_000_700)
      assert.strictEqual(first.pcm.readInt16LE(0), 7)
      assert.deepStrictEqual(transcripts.map((t) => t.text), ["chunk 0..9", "chunk 10..19", "chunk 20..29"])
      assert.deepStrictEqual(transcripts.map((t) => [t.startMs, t.endMs, t.isFinal]), [[0, 1000, true], [1000, 2000, true], [2000, 3000, true]])
      assert.include(yield* metric("auralink_asr_chunks_sent_total"), "auralink_asr_chunks_sent_total 30")
      const health = yield* Health
      const ready = yield* health.readiness
      const dep = ready.dependencies["asr_gateway"]
      assert.deepStrictEqual([dep?.status, dep?.critical], ["up", false])
      const sections = yield* health.sections
      assert.deepInclude(record(sections["asr"]), { sink: "asr_gateway", breaker: "closed", streams: 0 })
    }).pipe(Effect.provide(deps({}))))

  it.live("ASR_CONNECTIONS: streams are spread over that many HTTP/2 connections, each new one on the connection carrying the fewest", () =>
    Effect.gen(function*() {
      const asr = yield* fake()
      const gateway = yield* makeAsrGateway(asr.url)
      const peerOf = (sessionId: string) => asr.chunks(sessionId)[0]?.peer ?? ""
      const open = (sessionId: string) =>
        Effect.gen(function*() {
          const scope = yield* Scope.make()
          const stream = yield* Scope.provide(gateway.openStream(key(sessionId)), scope)
          yield* stream.send(chunk(0))
          yield* eventually(Effect.sync(() => peerOf(sessionId) !== ""))
          return { stream, scope }
        })
      const streams = yield* Effect.forEach(["c1", "c2", "c3", "c4"], open)
      const peers = ["c1", "c2", "c3", "c4"].map(peerOf)
      assert.strictEqual(new Set(peers).size, 2, `peers ${peers.join(" ")}`)
      assert.strictEqual(peers.filter((p) => p === peers[0]).length, 2)
      // Both streams of the first connection end: the next stream goes there.
      for (const i of [0, 1, 2, 3]) {
        if (peers[i] === peers[0]) yield* Scope.close(streams[i]!.scope, Exit.void)
      }
      yield* open("c5")
      assert.strictEqual(peerOf("c5"), peers[0])
      assert.deepInclude(record((yield* (yield* Health).sections)["asr"]), { connections: 2, channel: "READY" })
    }).pipe(Effect.provide(deps({ ASR_CONNECTIONS: "2" }))))

  it.live("two producers of one session: two streams, each chunk and transcript tagged with its producer", () =>
    Effect.gen(function*() {
      const asr = yield* fake()
      const gateway = yield* makeAsrGateway(asr.url)
      const pcm = yield* gateway.openStream({ sessionId: "s8", producerId: "pcm-1", path: "datachannel" })
      const opus = yield* gateway.openStream({ sessionId: "s8", producerId: "opus-1", path: "rtp" })
      assert.strictEqual((yield* gateway.streams).size, 2)
      // The same producer twice is refused; another session's producer is not.
      const twice = yield* Effect.flip(Effect.scoped(gateway.openStream({ sessionId: "s8", producerId: "pcm-1", path: "datachannel" })))
      assert.include(twice.message, "already open for producer pcm-1")
      const transcripts = yield* Effect.forkChild(Stream.runCollect(Stream.merge(pcm.transcripts, opus.transcripts)))
      for (const n of range(0, 10)) yield* pcm.send(chunk(n))
      for (const n of range(500, 520)) yield* opus.send(chunk(n))
      yield* pcm.close
      yield* opus.close
      const by = asr.byProducer("s8")
      assert.deepStrictEqual(by.get("pcm-1")?.map((c) => c.sequence), range(0, 10))
      assert.deepStrictEqual(by.get("opus-1")?.map((c) => c.sequence), range(500, 520))
      assert.isTrue(by.get("pcm-1")!.every((c) => c.path === "datachannel"))
      assert.isTrue(by.get("opus-1")!.every((c) => c.path === "rtp"))
      const texts = (yield* Fiber.join(transcripts)).map((t) => `${t.producerId}: ${t.text}`).sort()
      assert.deepStrictEqual(texts, ["opus-1: chunk 500..509", "opus-1: chunk 510..519", "pcm-1: chunk 0..9"])
      assert.strictEqual((yield* gateway.streams).size, 0)
    }).pipe(Effect.provide(deps({}))))

  it.live("gateway down at start: breaker opens after the configured failures, audio is buffered and delivered when it is back", () =>
    Effect.gen(function*() {
      const asr = yield* fake()
      asr.stop()
      const gateway = yield* makeAsrGateway(asr.url)
      const stream = yield* gateway.openStream(key("s2"))
      for (const n of range(0, 20)) yield* stream.send(chunk(n))
      yield* eventually(Effect.map(gateway.breaker.state, (s) => s === "open"))
      assert.include(yield* metric("auralink_circuit_breaker_state"), "auralink_circuit_breaker_state{name=\"asr_gateway\"} 2")
      const health = yield* Health
      const dep = (yield* health.readiness).dependencies["asr_gateway"]
      assert.strictEqual(dep?.status, "down")
      assert.deepStrictEqual(asr.chunks("s2"), [])
      yield* Effect.promise(() => asr.start())
      yield* eventually(Effect.sync(() => sameList(asr.sequences("s2"), range(0, 20))))
      for (const n of range(20, 30)) yield* stream.send(chunk(n))
      yield* stream.close
      assert.deepStrictEqual(asr.sequences("s2"), range(0, 30))
      assertInOrderPerStream(asr, "s2")
      assert.strictEqual(yield* gateway.breaker.state, "closed")
      assert.notInclude(yield* metric("auralink_asr_chunks_dropped_total"), "reason=\"replay_buffer_full\"")
    }).pipe(Effect.provide(deps({ ASR_DEADLINE_MS: "300", ASR_BREAKER_FAILURES: "3", ASR_BREAKER_RESET_MS: "1000" }))))

  it.live("offer writes straight to a live call: nothing queued at a steady pace, and mixed with send and bursts all arrive once and in order", () =>
    Effect.gen(function*() {
      const asr = yield* fake()
      const gateway = yield* makeAsrGateway(asr.url)
      const stream = yield* gateway.openStream(key("s9"))
      const handle = (yield* gateway.streams).get("s9/p1")!
      yield* eventually(Effect.map(handle.stats, (s) => s.connected))
      const offer = stream.offer!
      for (const n of range(0, 20)) {
        assert.isTrue(offer(chunk(n)), `chunk ${n}`)
        yield* Effect.sleep("5 millis")
      }
      yield* eventually(Effect.sync(() => asr.sequences("s9").length === 20))
      // Straight to the call: the queue was never used.
      assert.strictEqual((yield* handle.stats).maxQueued, 0)
      // A chunk sent (queued, not yet written) is ahead of the next offered one; a burst beyond
      // the direct writes in flight goes through the queue too, behind them; send after it.
      yield* stream.send(chunk(20))
      const taken = range(21, 40).filter((n) => offer(chunk(n)))
      assert.deepStrictEqual(taken, range(21, 40))
      assert.isAbove((yield* handle.stats).maxQueued, 0)
      for (const n of range(40, 60)) yield* stream.send(chunk(n))
      for (const n of range(60, 70)) assert.isTrue(offer(chunk(n)), `chunk ${n}`)
      yield* stream.close
      assert.deepStrictEqual(asr.chunks("s9").map((c) => c.sequence), range(0, 70))
      assert.include(yield* metric("auralink_asr_chunks_sent_total"), "auralink_asr_chunks_sent_total 70")
    }).pipe(Effect.provide(deps({}))))

  it.live("offered chunks survive a restart of the gateway: buffered, replayed and continued in order", () =>
    Effect.gen(function*() {
      const asr = yield* fake()
      const gateway = yield* makeAsrGateway(asr.url)
      const stream = yield* gateway.openStream(key("s10"))
      const handle = (yield* gateway.streams).get("s10/p1")!
      yield* eventually(Effect.map(handle.stats, (s) => s.connected))
      const offerPaced = (from: number, to: number) =>
        Effect.forEach(range(from, to), (n) => Effect.andThen(Effect.sync(() => assert.isTrue(stream.offer!(chunk(n)))), Effect.sleep("10 millis")), {
          discard: true
        })
      yield* offerPaced(0, 10)
      asr.stop()
      yield* offerPaced(10, 30)
      yield* Effect.promise(() => asr.start())
      yield* eventually(Effect.map(handle.stats, (s) => s.connected))
      yield* offerPaced(30, 40)
      yield* eventually(Effect.sync(() => sameList(asr.sequences("s10"), range(0, 40))))
      yield* stream.close
      assertInOrderPerStream(asr, "s10")
    }).pipe(Effect.provide(deps({ ASR_DEADLINE_MS: "300" }))))

  it.live("direct writes that grpc-js does not take are failed at the deadline, though nothing more is offered", () =>
    Effect.gen(function*() {
      const asr = yield* fake()
      const gateway = yield* makeAsrGateway(asr.url)
      const stream = yield* gateway.openStream(key("s11"))
      const handle = (yield* gateway.streams).get("s11/p1")!
      yield* eventually(Effect.map(handle.stats, (s) => s.connected))
      asr.stall()
      // Chunks of 2 s (64 KB) every 5 ms until grpc-js stops taking them (the HTTP/2 window is full).
      const big = (n: number) => ({ ...chunk(n), pcm: new Uint8Array(64_000) })
      let offered = 0
      while ((yield* handle.stats).inFlight < 2) {
        assert.isBelow(offered, 200, "the stalled gateway kept taking chunks")
        assert.isTrue(stream.offer!(big(offered++)))
        yield* Effect.sleep("5 millis")
      }
      const started = Date.now()
      yield* eventually(Effect.map(handle.stats, (s) => s.reconnects >= 1), 10)
      assert.isAtLeast(Date.now() - started, 400)
      // Only direct writes were in flight: the watchdog, not the pump's write, failed the call.
      assert.strictEqual((yield* handle.stats).maxQueued, 0)
      asr.unstall()
      yield* eventually(Effect.sync(() => sameList(asr.sequences("s11"), range(0, offered))))
      yield* stream.close
    }).pipe(Effect.provide(deps({ ASR_DEADLINE_MS: "500", ASR_REPLAY_BUFFER_MS: "600000" }))))

  it.live("killed mid-stream and restarted on the same port: nothing lost within the buffer window", () =>
    Effect.gen(function*() {
      const asr = yield* fake()
      const gateway = yield* makeAsrGateway(asr.url)
      const stream = yield* gateway.openStream(key("s3"))
      for (const n of range(0, 10)) yield* stream.send(chunk(n))
      yield* eventually(Effect.sync(() => asr.sequences("s3").length === 10))
      asr.stop()
      for (const n of range(10, 30)) {
        yield* stream.send(chunk(n))
        yield* Effect.sleep("10 millis")
      }
      yield* Effect.promise(() => asr.start())
      for (const n of range(30, 40)) yield* stream.send(chunk(n))
      yield* eventually(Effect.sync(() => sameList(asr.sequences("s3"), range(0, 40))))
      yield* stream.close
      assertInOrderPerStream(asr, "s3")
      const stats = yield* Effect.flatMap(gateway.streams, (all) => Effect.succeed(all.size))
      assert.strictEqual(stats, 0)
      assert.include(yield* metric("auralink_asr_reconnects_total"), "auralink_asr_reconnects_total 1")
      assert.notInclude(yield* metric("auralink_asr_chunks_dropped_total"), "reason=\"replay_buffer_full\"")
    }).pipe(Effect.provide(deps({ ASR_DEADLINE_MS: "300" }))))

  it.live("an outage longer than the buffer window drops the oldest chunks and counts them", () =>
    Effect.gen(function*() {
      const asr = yield* fake()
      const gateway = yield* makeAsrGateway(asr.url)
      const stream = yield* gateway.openStream(key("s4"))
      for (const n of range(0, 3)) yield* stream.send(chunk(n))
      yield* eventually(Effect.sync(() => asr.sequences("s4").length === 3))
      asr.stop()
      // 20 chunks of 100 ms while down; the buffer keeps the newest 500 ms (5 chunks).
      for (const n of range(3, 23)) yield* stream.send(chunk(n))
      const handle = (yield* gateway.streams).get("s4/p1")!
      yield* eventually(Effect.map(handle.stats, (s) => s.dropped === 15))
      yield* Effect.promise(() => asr.start())
      yield* eventually(Effect.sync(() => sameList(asr.sequences("s4"), [...range(0, 3), ...range(18, 23)])))
      yield* stream.close
      assert.include(yield* metric("auralink_asr_chunks_dropped_total"), "auralink_asr_chunks_dropped_total{reason=\"replay_buffer_full\"} 15")
      assertInOrderPerStream(asr, "s4")
    }).pipe(Effect.provide(deps({ ASR_REPLAY_BUFFER_MS: "500", ASR_DEADLINE_MS: "300" }))))

  it.live("a slow gateway back-pressures send: the queue never exceeds its capacity and memory stays bounded", () =>
    Effect.gen(function*() {
      const asr = yield* fake()
      asr.readDelayMs = 10
      const gateway = yield* makeAsrGateway(asr.url)
      const stream = yield* gateway.openStream(key("s5"))
      const handle = (yield* gateway.streams).get("s5/p1")!
      yield* eventually(Effect.map(handle.stats, (s) => s.connected))
      let maxInFlight = 0
      const started = Date.now()
      for (const n of range(0, 300)) {
        yield* stream.send(chunk(n))
        const stats = yield* handle.stats
        maxInFlight = Math.max(maxInFlight, n + 1 - asr.chunks("s5").length)
        assert.isAtMost(stats.queued, 8)
      }
      const elapsed = Date.now() - started
      yield* stream.close
      const stats = yield* handle.stats
      assert.isAtMost(stats.maxQueued, 8)
      // 300 reads at 10 ms each: send had to wait for most of them.
      assert.isAtLeast(elapsed, 1500)
      // Queue + HTTP/2 window + grpc-js buffers: bounded, far below the 300 chunks offered.
      assert.isBelow(maxInFlight, 80)
      assert.deepStrictEqual(asr.sequences("s5"), range(0, 300))
      assert.strictEqual(stats.reconnects, 0)
    }).pipe(Effect.provide(deps({ ASR_QUEUE_CAPACITY: "8", ASR_DEADLINE_MS: "5000" }))))

  it.live("honours the deadline: a gateway that never answers counts as a failure within ASR_DEADLINE_MS", () =>
    Effect.gen(function*() {
      // A TCP listener that accepts and never speaks HTTP/2.
      const sockets = new Set<Socket>()
      const blackhole = createServer((socket) => sockets.add(socket))
      const port = yield* Effect.callback<number>((resume) => {
        blackhole.listen(0, "127.0.0.1", () => {
          const address = blackhole.address()
          resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
        })
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => (sockets.forEach((s) => s.destroy()), blackhole.close())))
      const gateway = yield* makeAsrGateway(`127.0.0.1:${port}`)
      const stream = yield* gateway.openStream(key("s6"))
      yield* stream.send(chunk(0))
      const started = Date.now()
      yield* eventually(Effect.map(gateway.breaker.failures, (n) => n >= 1), 5)
      const firstFailure = Date.now() - started
      assert.isAtLeast(firstFailure, 150)
      assert.isAtMost(firstFailure, 1500)
      yield* eventually(Effect.map(gateway.breaker.state, (s) => s === "open"), 5)
      const handle = (yield* gateway.streams).get("s6/p1")!
      assert.strictEqual((yield* handle.stats).connected, false)
    }).pipe(Effect.provide(deps({ ASR_DEADLINE_MS: "200", ASR_BREAKER_FAILURES: "2" }))))

  it.live("a stalled stream (writes not taken within the deadline) is failed and re-established", () =>
    Effect.gen(function*() {
      const asr = yield* fake()
      const gateway = yield* makeAsrGateway(asr.url)
      const stream = yield* gateway.openStream(key("s7"))
      const handle = (yield* gateway.streams).get("s7/p1")!
      yield* eventually(Effect.map(handle.stats, (s) => s.connected))
      asr.stall()
      const started = Date.now()
      const sender = yield* Effect.forkChild(Effect.forEach(range(0, 200), (n) => stream.send(chunk(n)), { discard: true }))
      yield* eventually(Effect.map(handle.stats, (s) => s.reconnects >= 1), 10)
      // Detected one deadline after the HTTP/2 window filled, not earlier.
      assert.isAtLeast(Date.now() - started, 500)
      asr.unstall()
      yield* Fiber.join(sender)
      yield* stream.close
      // The newest 5 s (50 chunks) were replayed on the new stream; the gateway has them all.
      const got = new Set(asr.sequences("s7"))
      assert.isTrue(range(150, 200).every((n) => got.has(n)), "last 5 s delivered")
      assertInOrderPerStream(asr, "s7")
    }).pipe(Effect.provide(deps({ ASR_DEADLINE_MS: "500", ASR_QUEUE_CAPACITY: "4" }))))
})
