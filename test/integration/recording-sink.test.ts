import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema, Stream } from "effect"
import { execFileSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { AudioSink } from "../../src/layers/AudioSink.ts"
import { AppConfig } from "../../src/layers/Config.ts"
import { Health } from "../../src/layers/Health.ts"
import { Metrics } from "../../src/layers/Metrics.ts"
import { makeRecordingSink, RECORDING_BATCH_BYTES, RECORDING_FLUSH_MS } from "../../src/layers/RecordingSink.ts"
import type { SinkAudioChunk } from "../../src/schemas/asr.ts"
import { record } from "../support/auth.ts"

/** The fields of `ffprobe -of json` this test reads. */
const FfprobeOutput = Schema.fromJsonString(Schema.Struct({
  streams: Schema.Array(Schema.Struct({ codec_name: Schema.String, sample_rate: Schema.String, channels: Schema.Number })),
  format: Schema.Struct({ duration: Schema.String })
}))

const deps = (dataDir: string, env: Record<string, string> = {}) =>
  Layer.mergeAll(Health.layer, Metrics.layer).pipe(Layer.provideMerge(AppConfig.layerFrom({ LOG_LEVEL: "error", DATA_DIR: dataDir, ...env })))

/** 100 ms of a 440 Hz tone at 16 kHz, phase-continuous across chunks. */
const tone = (sequence: number): SinkAudioChunk => {
  const samples = new Int16Array(1600)
  for (let i = 0; i < samples.length; i++) {
    samples[i] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * (sequence * 1600 + i)) / 16_000))
  }
  return { sequence, captureTimeMs: sequence * 100, pcm: new Uint8Array(samples.buffer) }
}

/** The sink stream of producer `p1` of `sessionId` (PCM path). */
const key = (sessionId: string) => ({ sessionId, producerId: "p1", path: "datachannel" as const })

const hasFfprobe = (() => {
  try {
    execFileSync("ffprobe", ["-version"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
})()

describe("RecordingSink", () => {
  const firstDir = mkdtempSync(join(tmpdir(), "auralink-rec-"))
  it.effect("writes a valid WAV per session whose header sizes match the data and whose samples are what was sent", () =>
    Effect.gen(function*() {
      const dataDir = firstDir
      const sink = yield* makeRecordingSink
      const chunks = Array.from({ length: 25 }, (_, n) => tone(n))
      const path = sink.pathOf("session-1", "p1")
      yield* Effect.scoped(Effect.gen(function*() {
        const stream = yield* sink.openStream(key("session-1"))
        for (const c of chunks) yield* stream.send(c)
        assert.deepStrictEqual(yield* Stream.runCollect(stream.transcripts), [])
        // Before close the header still says 0 bytes.
        assert.strictEqual(readFileSync(path).readUInt32LE(40), 0)
      }))
      assert.strictEqual(path, join(dataDir, "recordings", "session-1", "p1.wav"))
      const file = readFileSync(path)
      const dataBytes = 25 * 3200
      assert.strictEqual(file.length, 44 + dataBytes)
      assert.strictEqual(file.toString("ascii", 0, 4), "RIFF")
      assert.strictEqual(file.readUInt32LE(4), 36 + dataBytes)
      assert.strictEqual(file.toString("ascii", 8, 16), "WAVEfmt ")
      assert.deepStrictEqual(
        [file.readUInt16LE(20), file.readUInt16LE(22), file.readUInt32LE(24), file.readUInt32LE(28), file.readUInt16LE(32), file.readUInt16LE(34)],
        [1, 1, 16_000, 32_000, 2, 16]
      )
      assert.strictEqual(file.toString("ascii", 36, 40), "data")
      assert.strictEqual(file.readUInt32LE(40), dataBytes)
      const expected = Buffer.concat(chunks.map((c) => Buffer.from(c.pcm)))
      assert.isTrue(file.subarray(44).equals(expected), "samples equal what was sent")
      if (hasFfprobe) {
        const probe = Schema.decodeUnknownSync(FfprobeOutput)(
          execFileSync("ffprobe", ["-v", "error", "-show_streams", "-show_format", "-of", "json", path]).toString()
        )
        assert.deepStrictEqual(
          [probe.streams[0]?.codec_name, probe.streams[0]?.sample_rate, probe.streams[0]?.channels],
          ["pcm_s16le", "16000", 1]
        )
        assert.closeTo(Number(probe.format.duration), 2.5, 0.001)
      }
      // A closed stream refuses more audio.
      const stream = yield* Effect.scoped(sink.openStream(key("session-2")))
      const refused = yield* Effect.flip(stream.send(tone(0)))
      assert.strictEqual(refused._tag, "AudioSinkClosed")
      assert.strictEqual(readFileSync(sink.pathOf("session-2", "p1")).readUInt32LE(40), 0)
      const health = yield* Health
      assert.deepInclude(record((yield* health.sections)["asr"]), { sink: "recording", streams: 0, recordingsFinished: 2 })
    }).pipe(Effect.provide(deps(firstDir))))

  it.effect("two producers of one session: one WAV file each, named by producer id", () =>
    Effect.gen(function*() {
      const sink = yield* makeRecordingSink
      yield* Effect.scoped(Effect.gen(function*() {
        const pcm = yield* sink.openStream({ sessionId: "session-3", producerId: "pcm-1", path: "datachannel" })
        const opus = yield* sink.openStream({ sessionId: "session-3", producerId: "opus-1", path: "rtp" })
        const twice = yield* Effect.flip(Effect.scoped(sink.openStream({ sessionId: "session-3", producerId: "opus-1", path: "rtp" })))
        assert.include(twice.message, "already open for producer opus-1")
        for (const n of [0, 1, 2]) yield* pcm.send(tone(n))
        for (const n of [0, 1]) yield* opus.send(tone(n))
        const health = yield* Health
        assert.deepInclude(record((yield* health.sections)["asr"]), { streams: 2 })
      }))
      assert.strictEqual(readFileSync(sink.pathOf("session-3", "pcm-1")).readUInt32LE(40), 3 * 3200)
      assert.strictEqual(readFileSync(sink.pathOf("session-3", "opus-1")).readUInt32LE(40), 2 * 3200)
      const health = yield* Health
      assert.deepInclude(record((yield* health.sections)["asr"]), { streams: 0, recordingsFinished: 2 })
    }).pipe(Effect.provide(deps(mkdtempSync(join(tmpdir(), "auralink-rec-"))))))

  it.live("gathers samples into batches: quiet streams reach the file within the flush interval, odd bytes are cut, large chunks keep their place", () =>
    Effect.gen(function*() {
      const sink = yield* makeRecordingSink
      const path = sink.pathOf("session-4", "p1")
      const odd = new Uint8Array(3201).fill(7)
      const large = new Uint8Array(RECORDING_BATCH_BYTES + 4000).fill(9)
      yield* Effect.scoped(Effect.gen(function*() {
        const stream = yield* sink.openStream(key("session-4"))
        assert.isTrue(stream.offer?.(tone(0)))
        yield* stream.send(tone(1))
        // Less than a batch: nothing but the header until the flush interval has passed.
        assert.strictEqual(readFileSync(path).length, 44)
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, RECORDING_FLUSH_MS * 2 + 200)))
        assert.strictEqual(readFileSync(path).length, 44 + 2 * 3200, "flushed while open")
        assert.strictEqual(readFileSync(path).readUInt32LE(40), 0, "the header is patched at close only")
        yield* stream.send({ sequence: 2, captureTimeMs: 200, pcm: odd })
        yield* stream.send({ sequence: 3, captureTimeMs: 300, pcm: large })
        yield* stream.send(tone(4))
      }))
      const file = readFileSync(path)
      const expected = Buffer.concat([tone(0).pcm, tone(1).pcm, odd.subarray(0, 3200), large, tone(4).pcm])
      assert.strictEqual(file.readUInt32LE(40), expected.length)
      assert.isTrue(file.subarray(44).equals(expected), "samples in the order sent")
    }).pipe(Effect.provide(deps(mkdtempSync(join(tmpdir(), "auralink-rec-"))))))

  it.effect("a closed stream's offer takes nothing", () =>
    Effect.gen(function*() {
      const sink = yield* makeRecordingSink
      const stream = yield* Effect.scoped(sink.openStream(key("session-5")))
      assert.isFalse(stream.offer?.(tone(0)))
      assert.strictEqual(readFileSync(sink.pathOf("session-5", "p1")).length, 44)
    }).pipe(Effect.provide(deps(mkdtempSync(join(tmpdir(), "auralink-rec-"))))))

  it.effect("refuses session ids that are not safe file names", () =>
    Effect.gen(function*() {
      const sink = yield* makeRecordingSink
      const error = yield* Effect.flip(Effect.scoped(sink.openStream(key("../etc/passwd"))))
      assert.strictEqual(error._tag, "AudioSinkError")
    }).pipe(Effect.provide(deps(mkdtempSync(join(tmpdir(), "auralink-rec-"))))))

  it.effect("AudioSink.layer picks the recording sink without ASR_GATEWAY_URL and the gateway with it", () =>
    Effect.gen(function*() {
      const dataDir = mkdtempSync(join(tmpdir(), "auralink-rec-"))
      const recording = yield* Effect.map(AudioSink, (s) => s.kind).pipe(
        Effect.provide(AudioSink.layer.pipe(Layer.provide(deps(dataDir))))
      )
      assert.strictEqual(recording, "recording")
      assert.isTrue(existsSync(join(dataDir, "recordings")))
      const gateway = yield* Effect.map(AudioSink, (s) => s.kind).pipe(
        Effect.provide(AudioSink.layer.pipe(Layer.provide(deps(dataDir, { ASR_GATEWAY_URL: "127.0.0.1:1" }))))
      )
      assert.strictEqual(gateway, "asr_gateway")
    }))
})
