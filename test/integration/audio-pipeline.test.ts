import { assert, describe, it, vi } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Schema, Stream } from "effect"
import { AudioMetrics } from "../../src/layers/audio/metrics.ts"
import { AudioDecoders } from "../../src/layers/AudioDecoders.ts"
import { Metrics } from "../../src/layers/Metrics.ts"
import { encodeChunk } from "../../src/programs/audio/pcm.ts"
import {
  type AudioIngest,
  type AudioSource,
  type AudioSourceHandlers,
  dataChannelIngest,
  type ReceivedChunk,
  rtpIngest
} from "../../src/programs/audio/pipeline.ts"
import { captureOpusRtp } from "../support/ffmpeg-rtp.ts"
import { capturedLogs } from "../support/http.ts"
import { checkToneSequence, concatSamples, toneSequence } from "../support/tones.ts"

/** An error message the data-channel path answers a rejected chunk with. */
const ReplyMessage = Schema.fromJsonString(Schema.Struct({
  type: Schema.String,
  reason: Schema.String,
  sequence: Schema.optionalKey(Schema.Number)
}))

const TestLayer = AudioMetrics.layer.pipe(Layer.provideMerge(Metrics.layer))

/** A callback-style source driven by the test, like a mediasoup consumer's events. */
const fakeSource = (flow?: { readonly pausable: boolean }) => {
  let handlers: AudioSourceHandlers | undefined
  const replies: Array<string> = []
  const state = { subscribed: false, unsubscribed: false, paused: false, pauses: 0, resumes: 0 }
  const source: AudioSource = {
    subscribe: (h) => {
      handlers = h
      state.subscribed = true
      return () => {
        state.unsubscribed = true
      }
    },
    reply: (text) => replies.push(text),
    ...(flow?.pausable
      ? {
        pause: () => {
          state.paused = true
          state.pauses++
        },
        resume: () => {
          state.paused = false
          state.resumes++
        }
      }
      : {})
  }
  const h = () => {
    if (handlers === undefined) throw new Error("not subscribed")
    return handlers
  }
  return {
    source,
    replies,
    state,
    push: (message: Uint8Array) => h().push(message),
    end: () => h().end(),
    fail: (cause: unknown) => h().fail(cause)
  }
}

/** Splits samples into data-channel chunks of `chunkMs`. */
const chunksOf = (samples: Int16Array, chunkMs = 20, firstSequence = 0, captureStart = Date.now() - 5000) => {
  const per = chunkMs * 16
  const out: Array<Uint8Array> = []
  for (let i = 0, n = 0; i + per <= samples.length; i += per, n++) {
    out.push(encodeChunk({ sequence: firstSequence + n, captureTimeMs: captureStart + n * chunkMs, samples: samples.subarray(i, i + per) }))
  }
  return out
}

/** Sum of a metric's samples matching `labels`; `series` picks a histogram's `_count`/`_sum`. */
const metricValue = (name: string, labels: Record<string, string>, series: string = name) =>
  Effect.gen(function*() {
    const { registry } = yield* Metrics
    const metric = registry.getSingleMetric(name)
    if (metric === undefined) return assert.fail(`no metric ${name}`)
    const data = yield* Effect.promise(async () => metric.get())
    return data.values
      .filter((v) => ("metricName" in v && typeof v.metricName === "string" ? v.metricName : name) === series)
      .filter((v) => Object.entries(labels).every(([k, x]) => Object.entries(v.labels).some(([lk, lv]) => lk === k && lv === x)))
      .reduce((sum, v) => sum + v.value, 0)
  })

const collect = (audio: AudioIngest) => Effect.map(Stream.runCollect(audio.stream), (chunks) => Array.from(chunks))

describe("audio pipeline", () => {
  it.effect("data channel: validated chunks follow the tone sequence; bad chunks are dropped, counted and answered", () =>
    Effect.gen(function*() {
      const fake = fakeSource()
      const audio = yield* dataChannelIngest(fake.source, { capacity: 1000 })
      assert.isTrue(fake.state.subscribed)
      const good = chunksOf(toneSequence({ sampleRate: 16_000 }))
      const bad: Array<Uint8Array> = [
        new Uint8Array(8), // too_short
        (() => {
          const c = encodeChunk({ sequence: 9000, captureTimeMs: Date.now(), samples: new Int16Array(320) })
          c[0] = 2
          return c
        })(), // bad_version
        encodeChunk({ sequence: 9001, captureTimeMs: Date.now(), samples: new Int16Array(320) }).subarray(0, 16 + 321), // odd
        encodeChunk({ sequence: 9002, captureTimeMs: Date.now(), samples: new Int16Array(80) }), // too_short_duration
        encodeChunk({ sequence: 9003, captureTimeMs: Date.now(), samples: new Int16Array(16_160) }), // too_long_duration
        encodeChunk({ sequence: 9004, captureTimeMs: Date.now(), samples: new Int16Array(40_000) }), // too_large
        encodeChunk({ sequence: 9005, captureTimeMs: 0, samples: new Int16Array(320) }) // bad_capture_time
      ]
      // Interleave the bad chunks with the good ones, drop two good ones (a gap) and repeat one.
      let sent = 0
      good.forEach((chunk, i) => {
        if (i === 30 || i === 31) return
        fake.push(chunk)
        sent++
        if (i === 40) fake.push(chunk)
        if (i % 10 === 5 && bad.length > 0) fake.push(bad.shift()!)
      })
      fake.end()
      const chunks = yield* collect(audio)
      assert.strictEqual(chunks.length, sent)
      assert.isTrue(chunks.every((c) => c.path === "datachannel" && c.durationMs === 20))
      const check = checkToneSequence(concatSamples(chunks.map((c) => c.samples)), 16_000)
      assert.isTrue(check.ok, check.reason)
      const replies = fake.replies.map((r) => Schema.decodeUnknownSync(ReplyMessage)(r))
      assert.deepStrictEqual(replies.map((r) => r.reason), [
        "too_short",
        "bad_version",
        "odd_sample_bytes",
        "too_short_duration",
        "too_long_duration",
        "too_large",
        "bad_capture_time"
      ])
      assert.isTrue(replies.every((r) => r.type === "error"))
      assert.isUndefined(replies[0]!.sequence)
      assert.strictEqual(replies[1]!.sequence, 9000)
      const stats = audio.stats()
      assert.deepStrictEqual(
        [stats.rejected, stats.lost, stats.duplicates, stats.late, stats.overflow, stats.emitted],
        [7, 2, 1, 0, 0, sent]
      )
      assert.strictEqual(yield* metricValue("auralink_audio_chunks_total", { path: "datachannel" }), sent)
      assert.strictEqual(yield* metricValue("auralink_audio_loss_total", { path: "datachannel" }), 2)
      assert.strictEqual(yield* metricValue("auralink_audio_chunk_rejects_total", { reason: "odd_sample_bytes" }), 1)
      assert.strictEqual(yield* metricValue("auralink_audio_chunk_rejects_total", { path: "datachannel" }), 7)
      assert.strictEqual(yield* metricValue("auralink_audio_chunks_dropped_total", { reason: "duplicate" }), 1)
      const bytes = good.filter((_, i) => i !== 30 && i !== 31).reduce((n, c) => n + c.byteLength, 0) + good[40]!.byteLength
      const badBytes = 8 + 656 + 337 + 176 + 32_336 + 80_016 + 656
      assert.strictEqual(yield* metricValue("auralink_audio_bytes_total", { path: "datachannel" }), bytes + badBytes)
      assert.strictEqual(
        yield* metricValue("auralink_audio_server_latency_seconds", { path: "datachannel" }, "auralink_audio_server_latency_seconds_count"),
        sent
      )
    }).pipe(Effect.provide(TestLayer)))

  it.effect("data channel: a jump in sequence numbers (a client restarting its counter) is not counted as ~2^31 lost chunks", () =>
    Effect.gen(function*() {
      const fake = fakeSource()
      const audio = yield* dataChannelIngest(fake.source, { capacity: 1000 })
      const chunks = chunksOf(new Int16Array(16 * 20 * 6), 20, 5)
      chunks.slice(0, 3).forEach((c) => fake.push(c)) // 5, 6, 7
      chunksOf(new Int16Array(16 * 20 * 3), 20, 2 ** 31 + 3).forEach((c) => fake.push(c)) // 2^31 + 3, + 4, + 5
      fake.end()
      const out = yield* collect(audio)
      assert.strictEqual(out.length, 6)
      assert.strictEqual(audio.stats().lost, 0)
      assert.strictEqual(yield* metricValue("auralink_audio_loss_total", { path: "datachannel" }), 0)
    }).pipe(Effect.provide(TestLayer)))

  for (const [where, decoders] of [["on a decode thread", AudioDecoders.layerThreads(1)], ["on the main thread", AudioDecoders.layerInline]] as const) {
    it.effect(`RTP, decoded ${where}: ffmpeg Opus packets come out as 16 kHz chunks that follow the tone sequence`, () =>
      Effect.gen(function*() {
        const packets = yield* Effect.promise(() => captureOpusRtp({ channels: 2 }))
        const fake = fakeSource()
        const audio = yield* rtpIngest(fake.source, { capacity: 1000, decoder: { payloadType: 111 } })
        for (const { packet } of packets) fake.push(packet)
        fake.push(Uint8Array.of(1, 2, 3)) // malformed
        fake.end()
        const chunks = yield* collect(audio)
        assert.strictEqual(chunks.length, packets.length)
        assert.isTrue(chunks.every((c, i) => c.path === "rtp" && c.samples.length === 320 && (i === 0 || c.sequence === chunks[i - 1]!.sequence + 1)))
        const check = checkToneSequence(concatSamples(chunks.map((c) => c.samples)), 16_000)
        assert.isTrue(check.ok, check.reason)
        assert.strictEqual(audio.stats().lost, 0)
        assert.strictEqual(yield* metricValue("auralink_audio_chunks_total", { path: "rtp" }), packets.length)
        assert.strictEqual(yield* metricValue("auralink_audio_chunk_rejects_total", { path: "rtp", reason: "malformed_rtp" }), 1)
        assert.strictEqual(yield* metricValue("auralink_audio_loss_total", { path: "rtp" }), 0)
        assert.isAbove(yield* metricValue("auralink_audio_bytes_total", { path: "rtp" }), packets.length * 10)
      }).pipe(Effect.provide(decoders.pipe(Layer.provideMerge(TestLayer)))))
  }

  for (const [where, decoders] of [["on a decode thread", AudioDecoders.layerThreads(1)], ["on the main thread", AudioDecoders.layerInline]] as const) {
    it.effect(`RTP, decoded ${where}: a swap loses nothing, a padding-only packet leaves no gap, a lost packet is concealed`, () =>
      Effect.gen(function*() {
        const packets = (yield* Effect.promise(() => captureOpusRtp({ tones: [440, 660], toneMs: 400 }))).map((p) => Buffer.from(p.packet))
        const first = packets[0]!.readUInt16BE(2)
        // The sender's stream: a padding-only probe after packet 5 takes a sequence number of its own.
        const probe = Buffer.concat([packets[5]!.subarray(0, 12), Buffer.alloc(100)])
        probe[0] = probe[0]! | 0x20
        probe[probe.length - 1] = 100
        const sent = [...packets.slice(0, 6), probe, ...packets.slice(6)].map((packet, i) => {
          const out = Buffer.from(packet)
          out.writeUInt16BE((first + i) & 0xffff, 2)
          return out
        })
        // The network: packets 20 and 21 swapped, packet 30 lost (indices in `sent`).
        const wire = [...sent]
        ;[wire[20], wire[21]] = [wire[21]!, wire[20]!]
        wire.splice(30, 1)
        const fake = fakeSource()
        const audio = yield* rtpIngest(fake.source, { capacity: 1000, decoder: { payloadType: 111 }, jitterBufferMs: 60 })
        for (const packet of wire) fake.push(packet)
        fake.end()
        const chunks = yield* collect(audio)
        assert.strictEqual(chunks.length, packets.length, "every audio packet's place, the lost one concealed")
        assert.isTrue(chunks.every((c, i) => i === 0 || c.sequence === chunks[i - 1]!.sequence + 1), "no gap")
        const check = checkToneSequence(concatSamples(chunks.map((c) => c.samples)), 16_000, { tones: [440, 660] })
        assert.isTrue(check.ok, check.reason)
        assert.strictEqual(yield* metricValue("auralink_audio_loss_total", { path: "rtp" }), 1)
        assert.strictEqual(yield* metricValue("auralink_audio_concealed_total", { path: "rtp" }), 1)
        assert.strictEqual(yield* metricValue("auralink_audio_reordered_total", { path: "rtp" }), 1)
        assert.strictEqual(yield* metricValue("auralink_audio_chunks_dropped_total", { path: "rtp" }), 0)
      }).pipe(Effect.provide(decoders.pipe(Layer.provideMerge(TestLayer)))))

    it.live(`RTP, decoded ${where}: libopus errors are JSON log lines (one per 10 s per stream, with a count), not stderr text`, () => {
      const logs = capturedLogs()
      return Effect.gen(function*() {
        const packets = yield* Effect.promise(() => captureOpusRtp({ tones: [440], toneMs: 200 }))
        const stderr = vi.spyOn(process.stderr, "write")
        const errors = vi.spyOn(console, "error")
        try {
          const fake = fakeSource()
          const audio = yield* rtpIngest(fake.source, { capacity: 1000, decoder: { payloadType: 111 } }).pipe(Effect.annotateLogs({ sessionId: "s-1" }))
          const header = packets[0]!.packet.subarray(0, 12)
          // Code 3 with a padding length past the end: passes the structural check, libopus refuses it (-4).
          const corrupt = (sequence: number) => {
            const out = Buffer.concat([header, Buffer.from([0xff, 0x41, 0xff, 0xff])])
            out.writeUInt16BE(sequence & 0xffff, 2)
            return out
          }
          const first = packets[0]!.packet.readUInt16BE(2)
          for (const [i, { packet }] of packets.entries()) {
            if (i === 3 || i === 4) fake.push(corrupt(first + i))
            else fake.push(packet)
          }
          fake.end()
          yield* collect(audio)
          yield* Effect.promise(() => new Promise((r) => setTimeout(r, 200)))
          assert.strictEqual(yield* metricValue("auralink_audio_chunk_rejects_total", { path: "rtp", reason: "opus_decode_error" }), 2)
          const lines = logs.lines.filter((l) => l["msg"] === "Opus packet not decoded")
          assert.strictEqual(lines.length, 1, JSON.stringify(logs.lines))
          assert.include(JSON.stringify(lines[0]), "OPUS_INVALID_PACKET")
          assert.strictEqual(lines[0]!["level"], "warn")
          assert.strictEqual(lines[0]!["sessionId"], "s-1", "with the pipeline's annotations")
          const printed = [...stderr.mock.calls, ...errors.mock.calls].map((call) => String(call[0]))
          assert.isFalse(printed.some((text) => text.includes("libopus")), printed.join("\n"))
        } finally {
          stderr.mockRestore()
          errors.mockRestore()
        }
      }).pipe(Effect.provide(decoders.pipe(Layer.provideMerge(TestLayer), Layer.provideMerge(logs.layer))))
    })
  }

  it.effect("RTP: a decode thread that dies fails its streams' audio and is replaced", () =>
    Effect.gen(function*() {
      const packets = yield* Effect.promise(() => captureOpusRtp({ tones: [440], toneMs: 200 }))
      const decoders = yield* AudioDecoders
      const fake = fakeSource()
      const audio = yield* rtpIngest(fake.source, { capacity: 1000, decoder: { payloadType: 111 } })
      const [thread] = yield* decoders.workers
      yield* Effect.promise(() => thread!.terminate())
      for (const { packet } of packets) fake.push(packet)
      const exit = yield* Effect.exit(collect(audio))
      assert.isTrue(Exit.isFailure(exit) && String(exit.cause).includes("AudioSourceError"), String(exit))
      const [replacement] = yield* decoders.workers
      assert.notStrictEqual(replacement, thread)
      // The replacement decodes a new stream.
      const next = fakeSource()
      const again = yield* rtpIngest(next.source, { capacity: 1000, decoder: { payloadType: 111 } })
      for (const { packet } of packets) next.push(packet)
      next.end()
      assert.strictEqual((yield* collect(again)).length, packets.length)
      assert.strictEqual(yield* metricValue("auralink_audio_decode_thread_restarts_total", {}), 1)
    }).pipe(Effect.provide(AudioDecoders.layerThreads(1).pipe(Layer.provideMerge(TestLayer)))))

  it.live("bounded buffer: a fast producer and a slow consumer never exceed capacity; overflow drops the oldest", () =>
    Effect.gen(function*() {
      const fake = fakeSource()
      const capacity = 16
      const audio = yield* dataChannelIngest(fake.source, { capacity })
      const chunks = chunksOf(toneSequence({ tones: [440], toneMs: 4000 }), 10) // 400 chunks
      const received: Array<ReceivedChunk> = []
      const consumer = yield* Stream.runForEach(audio.stream, (chunk) => Effect.andThen(Effect.sync(() => received.push(chunk)), Effect.sleep("2 millis")))
        .pipe(Effect.forkChild)
      let maxDepth = 0
      // Bursts of 20 chunks per macrotask: far faster than the consumer.
      for (let i = 0; i < chunks.length; i += 20) {
        for (const chunk of chunks.slice(i, i + 20)) {
          fake.push(chunk)
          maxDepth = Math.max(maxDepth, audio.stats().depth)
        }
        yield* Effect.promise(() => new Promise((r) => setImmediate(r)))
      }
      fake.end()
      yield* Fiber.join(consumer)
      const stats = audio.stats()
      assert.isAtMost(maxDepth, capacity)
      assert.isAtMost(stats.highWater, capacity)
      assert.strictEqual(stats.highWater, capacity, "the producer did fill the buffer")
      assert.isAbove(stats.overflow, 0)
      assert.strictEqual(stats.accepted, chunks.length)
      assert.strictEqual(received.length + stats.overflow, chunks.length)
      // What survives is in order, and the newest chunk always survives (drop oldest).
      for (let i = 1; i < received.length; i++) assert.isAbove(received[i]!.sequence, received[i - 1]!.sequence)
      assert.strictEqual(received[received.length - 1]!.sequence, chunks.length - 1)
      assert.strictEqual(yield* metricValue("auralink_audio_chunks_dropped_total", { reason: "overflow" }), stats.overflow)
    }).pipe(Effect.provide(TestLayer)))

  it.live("direct offer: chunks go straight to the sink while it takes them, through the buffer when not, all once and in order", () =>
    Effect.gen(function*() {
      const fake = fakeSource()
      const audio = yield* dataChannelIngest(fake.source, { capacity: 500, latency: "manual" })
      const chunks = chunksOf(toneSequence({ tones: [440], toneMs: 3000 }), 10) // 300 chunks
      const arrived: Array<{ readonly sequence: number; readonly how: "offer" | "batch" }> = []
      let offers = 0
      // The direct offer refuses every 7th chunk (a full sink queue); a batch arrives a moment after it was taken.
      const offer = (chunk: ReceivedChunk) => {
        if (++offers % 7 === 0) return false
        arrived.push({ sequence: chunk.sequence, how: "offer" })
        return true
      }
      const batches = (batch: ReadonlyArray<ReceivedChunk>) =>
        Effect.andThen(Effect.sleep("5 millis"), Effect.sync(() => batch.forEach((c) => arrived.push({ sequence: c.sequence, how: "batch" }))))
      const sinking = yield* Effect.forkChild(audio.toSink(batches, offer))
      yield* Effect.yieldNow
      // Bursts of 3 every 2 ms: the batch path catches up between them.
      for (let i = 0; i < chunks.length; i += 3) {
        for (const chunk of chunks.slice(i, i + 3)) fake.push(chunk)
        yield* Effect.sleep("2 millis")
      }
      fake.end()
      yield* Fiber.join(sinking)
      assert.deepStrictEqual(arrived.map((a) => a.sequence), chunks.map((_, i) => i), "every chunk once, in order")
      assert.isAbove(arrived.filter((a) => a.how === "offer").length, 0)
      assert.isAbove(arrived.filter((a) => a.how === "batch").length, 0)
      const stats = audio.stats()
      assert.strictEqual(stats.accepted, chunks.length)
      assert.strictEqual(stats.emitted, chunks.length)
      assert.strictEqual(stats.overflow, 0)
    }).pipe(Effect.provide(TestLayer)))

  it.live("bounded buffer: a pausable source is held back instead (no drops, all chunks in order)", () =>
    Effect.gen(function*() {
      const fake = fakeSource({ pausable: true })
      const capacity = 8
      const audio = yield* dataChannelIngest(fake.source, { capacity })
      const chunks = chunksOf(toneSequence({ tones: [440], toneMs: 2000 }), 10) // 200 chunks
      const received: Array<ReceivedChunk> = []
      const consumer = yield* Stream.runForEach(audio.stream, (chunk) => Effect.andThen(Effect.sync(() => received.push(chunk)), Effect.sleep("1 millis")))
        .pipe(Effect.forkChild)
      let next = 0
      while (next < chunks.length) {
        // A producer that honours pause(), like a socket reader: it stops pushing until resume().
        while (next < chunks.length && !fake.state.paused) fake.push(chunks[next++]!)
        yield* Effect.promise(() => new Promise((r) => setTimeout(r, 1)))
      }
      fake.end()
      yield* Fiber.join(consumer)
      const stats = audio.stats()
      assert.isAtMost(stats.highWater, capacity)
      assert.strictEqual(stats.overflow, 0)
      assert.isAbove(fake.state.pauses, 0)
      assert.strictEqual(fake.state.resumes, fake.state.pauses)
      assert.deepStrictEqual(received.map((c) => c.sequence), chunks.map((_, i) => i))
    }).pipe(Effect.provide(TestLayer)))

  it.effect("a failed source fails the stream after the buffered chunks; closing the scope unsubscribes", () =>
    Effect.gen(function*() {
      const fake = fakeSource()
      const exit = yield* Effect.scoped(
        Effect.gen(function*() {
          const audio = yield* dataChannelIngest(fake.source, { capacity: 4 })
          for (const chunk of chunksOf(toneSequence({ tones: [440], toneMs: 60 }))) fake.push(chunk)
          fake.fail(new Error("transport closed"))
          const seen: Array<number> = []
          const exit = yield* Effect.exit(Stream.runForEach(audio.stream, (c) => Effect.sync(() => seen.push(c.sequence))))
          assert.deepStrictEqual(seen, [0, 1, 2])
          return exit
        })
      )
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) assert.include(String(exit.cause), "AudioSourceError")
      assert.isTrue(fake.state.unsubscribed)
      // Messages after the scope closed are ignored.
      fake.push(chunksOf(toneSequence({ tones: [440], toneMs: 20 }))[0]!)
    }).pipe(Effect.provide(TestLayer)))

  it.effect("latency: manual mode observes when the sink says so", () =>
    Effect.gen(function*() {
      let now = 1000
      const fake = fakeSource()
      const audio = yield* dataChannelIngest(fake.source, { capacity: 4, latency: "manual", monotonicNow: () => now })
      fake.push(chunksOf(toneSequence({ tones: [440], toneMs: 20 }))[0]!)
      fake.end()
      const [chunk] = yield* collect(audio)
      assert.strictEqual(yield* metricValue("auralink_audio_server_latency_seconds", { path: "datachannel" }, "auralink_audio_server_latency_seconds_count"), 0)
      now += 3
      audio.delivered(chunk!)
      assert.strictEqual(yield* metricValue("auralink_audio_server_latency_seconds", { path: "datachannel" }, "auralink_audio_server_latency_seconds_count"), 1)
      assert.strictEqual(
        yield* metricValue("auralink_audio_server_latency_seconds", { path: "datachannel" }, "auralink_audio_server_latency_seconds_sum"),
        0.003
      )
    }).pipe(Effect.provide(TestLayer)))
})
