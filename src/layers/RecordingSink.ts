import { Effect, type Scope, Stream } from "effect"
import { mkdir, open } from "node:fs/promises"
import { join } from "node:path"
import { AudioSinkClosed, AudioSinkError, SINK_SAMPLE_RATE, type SinkAudioChunk } from "../schemas/asr.ts"
import { type AudioSinkService, type AudioSinkStream, type AudioStreamKey, streamKey } from "./asr/types.ts"
import { AppConfig } from "./Config.ts"
import { Health } from "./Health.ts"
import { errorMessage } from "./error-message.ts"

/** Session and producer ids become file names: only these characters are accepted. */
const SAFE_ID = /^[A-Za-z0-9_-]{1,128}$/

/** A canonical 44-byte PCM WAV header (16-bit mono at `sampleRate`) for `dataBytes` bytes of samples. */
export const wavHeader = (dataBytes: number, sampleRate = SINK_SAMPLE_RATE): Buffer => {
  const header = Buffer.alloc(44)
  header.write("RIFF", 0, "ascii")
  header.writeUInt32LE(36 + dataBytes, 4)
  header.write("WAVE", 8, "ascii")
  header.write("fmt ", 12, "ascii")
  header.writeUInt32LE(16, 16) // fmt chunk size
  header.writeUInt16LE(1, 20) // PCM
  header.writeUInt16LE(1, 22) // mono
  header.writeUInt32LE(sampleRate, 24)
  header.writeUInt32LE(sampleRate * 2, 28) // byte rate
  header.writeUInt16LE(2, 32) // block align
  header.writeUInt16LE(16, 34) // bits per sample
  header.write("data", 36, "ascii")
  header.writeUInt32LE(dataBytes, 40)
  return header
}

export interface RecordingSinkService extends AudioSinkService {
  readonly kind: "recording"
  /** Where a producer's WAV file is (or will be) written. */
  readonly pathOf: (sessionId: string, producerId: string) => string
}

interface Recording {
  bytes: number
  chunks: number
  /** Hands what is gathered to the file (no-op when nothing is). */
  readonly flush: () => void
  readonly close: Effect.Effect<void>
}

/**
 * Samples gathered per file write: about half a second at 16 kHz. A write per chunk (50 a second
 * per producer) cost a promise, a thread-pool round trip and an Effect each.
 */
export const RECORDING_BATCH_BYTES = 16 * 1024

/** What is gathered is written at least this often (a producer that goes quiet still reaches its file). */
export const RECORDING_FLUSH_MS = 500

/** Batches being written per file beyond which `offer` refuses and `send` waits: the disk's back-pressure (about 2 s of audio). */
const MAX_WRITES_IN_FLIGHT = 4
/**
 * The embedded default `AudioSink` (no ASR_GATEWAY_URL): one WAV file per audio producer at
 * `<DATA_DIR>/recordings/<sessionId>/<producerId>.wav`, 16 kHz mono s16le. The header is written
 * with zero sizes at open and patched (RIFF and data sizes) on close, so a finished file is a
 * normal, playable WAV; chunks land in the order they are sent. Samples are gathered and written
 * in batches (RECORDING_BATCH_BYTES, at least every RECORDING_FLUSH_MS, and at close). No transcripts.
 */
export const makeRecordingSink: Effect.Effect<RecordingSinkService, AudioSinkError, AppConfig | Health | Scope.Scope> = Effect.gen(function*() {
  const { service } = yield* AppConfig
  const health = yield* Health
  const directory = join(service.dataDir, "recordings")
  yield* Effect.tryPromise({
    try: () => mkdir(directory, { recursive: true }),
    catch: (error) => new AudioSinkError({ sessionId: "", message: `recordings directory ${directory}: ${errorMessage(error)}` })
  })
  const open_ = new Map<string, Recording>()
  let finished = 0
  yield* health.section(
    "asr",
    Effect.sync(() => ({
      sink: "recording",
      directory,
      streams: open_.size,
      recordingsFinished: finished,
      bytesOpen: [...open_.values()].reduce((n, s) => n + s.bytes, 0)
    }))
  )
  yield* Effect.logInfo(`audio sink: recording WAV files under ${directory} (no ASR_GATEWAY_URL)`)
  const context = yield* Effect.context<never>()
  const logError = (message: string) => Effect.runForkWith(context)(Effect.logError(message))
  // One timer for every open recording, not one per producer.
  const flusher = setInterval(() => open_.forEach((r) => r.flush()), RECORDING_FLUSH_MS).unref()
  yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(flusher)))

  const pathOf = (sessionId: string, producerId: string) => join(directory, sessionId, `${producerId}.wav`)

  /** Opens the file and files the recording under `key` in one uninterruptible step, so it is always closed again. */
  const start = (key: AudioStreamKey) =>
    Effect.gen(function*() {
      const { sessionId, producerId } = key
      const path = pathOf(sessionId, producerId)
      const file = yield* Effect.tryPromise({
        try: async () => {
          await mkdir(join(directory, sessionId), { recursive: true })
          const handle = await open(path, "w")
          await handle.write(wavHeader(0), 0, 44, 0).catch(async (error: unknown) => {
            await handle.close()
            throw error
          })
          return handle
        },
        catch: (error) => new AudioSinkError({ sessionId, message: `recording ${path}: ${errorMessage(error)}` })
      })
      let batch = Buffer.allocUnsafeSlow(RECORDING_BATCH_BYTES)
      let used = 0
      /** Bytes handed to the file so far: where the next batch goes. */
      let written = 0
      let failures = 0
      const writing = new Set<Promise<void>>()
      let closed: Promise<void> | undefined
      // Positional writes of disjoint ranges: they may complete in any order.
      const write = (data: Uint8Array) => {
        const position = 44 + written
        written += data.byteLength
        const done: Promise<void> = file.write(data, 0, data.byteLength, position).then(
          () => undefined,
          (error: unknown) => {
            if (failures++ === 0) logError(`recording ${path}: write failed: ${errorMessage(error)} (later failures of this file are counted at its close)`)
          }
        ).finally(() => writing.delete(done))
        writing.add(done)
      }
      const flush = () => {
        if (used === 0) return
        write(batch.subarray(0, used))
        batch = Buffer.allocUnsafeSlow(RECORDING_BATCH_BYTES)
        used = 0
      }
      /** Gathers the chunk's whole samples (a trailing odd byte would shift every later sample). */
      const append = (pcm: Uint8Array) => {
        const length = pcm.byteLength - (pcm.byteLength % 2)
        state.bytes += length
        state.chunks += 1
        if (used + length > RECORDING_BATCH_BYTES) flush()
        if (length > RECORDING_BATCH_BYTES) return write(Uint8Array.prototype.slice.call(pcm, 0, length))
        batch.set(pcm.subarray(0, length), used)
        used += length
        if (used === RECORDING_BATCH_BYTES) flush()
      }
      const finish = async () => {
        flush()
        while (writing.size > 0) await Promise.all(writing)
        await file.write(wavHeader(state.bytes), 0, 44, 0)
        await file.close()
      }
      const state: Recording = {
        bytes: 0,
        chunks: 0,
        flush,
        close: Effect.suspend(() => {
          // A second close waits for the first (whose failure the first one logs).
          if (closed !== undefined) return Effect.promise(() => closed ?? Promise.resolve())
          const finishing = finish()
          closed = finishing.catch(() => undefined)
          return Effect.promise(() => finishing).pipe(
            Effect.andThen(Effect.logInfo(
              `recording finished: ${path} (${state.chunks} chunks, ${state.bytes / 32} ms${failures > 0 ? `, ${failures} failed writes` : ""})`
            )),
            Effect.catchDefect((error) => Effect.logError(`recording ${path}: finalize failed: ${errorMessage(error)}`)),
            Effect.ensuring(Effect.sync(() => {
              open_.delete(streamKey(key))
              finished += 1
            })),
            Effect.annotateLogs({ sessionId, producerId, sink: "recording" })
          )
        })
      }
      open_.set(streamKey(key), state)
      /** Takes the chunk unless the stream is closed or the disk is behind (then `send` waits). */
      const offer = (chunk: SinkAudioChunk): boolean => {
        if (closed !== undefined || writing.size >= MAX_WRITES_IN_FLIGHT) return false
        append(chunk.pcm)
        return true
      }
      const send = (chunk: SinkAudioChunk): Effect.Effect<void, AudioSinkClosed> =>
        Effect.suspend(function loop(): Effect.Effect<void, AudioSinkClosed> {
          if (closed !== undefined) return Effect.fail(new AudioSinkClosed({ sessionId }))
          if (offer(chunk)) return Effect.void
          return Effect.andThen(Effect.promise(() => Promise.race(writing)), Effect.suspend(loop))
        })
      return { state, send, offer }
    })

  const openStream = (key: AudioStreamKey): Effect.Effect<AudioSinkStream, AudioSinkError, Scope.Scope> =>
    Effect.gen(function*() {
      const { sessionId, producerId } = key
      if (!SAFE_ID.test(sessionId) || !SAFE_ID.test(producerId)) {
        return yield* new AudioSinkError({ sessionId, message: "session or producer id is not usable as a file name" })
      }
      if (open_.has(streamKey(key))) return yield* new AudioSinkError({ sessionId, message: `a recording is already open for producer ${producerId}` })
      const { state, send, offer } = yield* Effect.acquireRelease(start(key), ({ state }) => state.close)
      return { ...key, send, offer, transcripts: Stream.empty, close: state.close }
    })

  // Recordings still open at shutdown are finalized, so the files stay playable.
  yield* Effect.addFinalizer(() => Effect.forEach([...open_.values()], (s) => s.close, { concurrency: "unbounded", discard: true }))
  const service_: RecordingSinkService = { kind: "recording", openStream, pathOf }
  return service_
})
