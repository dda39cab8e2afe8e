import { Effect, Semaphore, type Scope, Stream } from "effect"
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
  readonly close: Effect.Effect<void>
}

/**
 * The embedded default `AudioSink` (no ASR_GATEWAY_URL): one WAV file per audio producer at
 * `<DATA_DIR>/recordings/<sessionId>/<producerId>.wav`, 16 kHz mono s16le. The header is written
 * with zero sizes at open and patched (RIFF and data sizes) on close, so a finished file is a
 * normal, playable WAV; chunks are written in the order they are sent. No transcripts.
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
      const lock = yield* Semaphore.make(1)
      let closed = false
      const state: Recording = {
        bytes: 0,
        chunks: 0,
        close: lock.withPermit(Effect.suspend(() => {
          if (closed) return Effect.void
          closed = true
          return Effect.promise(async () => {
            await file.write(wavHeader(state.bytes), 0, 44, 0)
            await file.close()
          }).pipe(
            Effect.andThen(Effect.logInfo(`recording finished: ${path} (${state.chunks} chunks, ${state.bytes / 32} ms)`)),
            Effect.catchDefect((error) => Effect.logError(`recording ${path}: finalize failed: ${errorMessage(error)}`)),
            Effect.ensuring(Effect.sync(() => {
              open_.delete(streamKey(key))
              finished += 1
            })),
            Effect.annotateLogs({ sessionId, producerId, sink: "recording" })
          )
        }))
      }
      open_.set(streamKey(key), state)
      const send = (chunk: SinkAudioChunk): Effect.Effect<void, AudioSinkClosed> =>
        lock.withPermit(Effect.suspend(() => {
          if (closed) return Effect.fail(new AudioSinkClosed({ sessionId }))
          // Whole samples only; a trailing odd byte would shift every later sample.
          const length = chunk.pcm.byteLength - (chunk.pcm.byteLength % 2)
          const position = 44 + state.bytes
          state.bytes += length
          state.chunks += 1
          return Effect.promise(() => file.write(chunk.pcm, 0, length, position)).pipe(
            Effect.asVoid,
            Effect.catchDefect((error) => Effect.logError(`recording ${path}: write failed: ${errorMessage(error)}`))
          )
        }))
      return { state, send }
    })

  const openStream = (key: AudioStreamKey): Effect.Effect<AudioSinkStream, AudioSinkError, Scope.Scope> =>
    Effect.gen(function*() {
      const { sessionId, producerId } = key
      if (!SAFE_ID.test(sessionId) || !SAFE_ID.test(producerId)) {
        return yield* new AudioSinkError({ sessionId, message: "session or producer id is not usable as a file name" })
      }
      if (open_.has(streamKey(key))) return yield* new AudioSinkError({ sessionId, message: `a recording is already open for producer ${producerId}` })
      const { state, send } = yield* Effect.acquireRelease(start(key), ({ state }) => state.close)
      return { ...key, send, transcripts: Stream.empty, close: state.close }
    })

  // Recordings still open at shutdown are finalized, so the files stay playable.
  yield* Effect.addFinalizer(() => Effect.forEach([...open_.values()], (s) => s.close, { concurrency: "unbounded", discard: true }))
  const service_: RecordingSinkService = { kind: "recording", openStream, pathOf }
  return service_
})
