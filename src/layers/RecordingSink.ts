import { Effect, Semaphore, type Scope, Stream } from "effect"
import { mkdir, open } from "node:fs/promises"
import { join } from "node:path"
import { AudioSinkClosed, AudioSinkError, SINK_SAMPLE_RATE, type SinkAudioChunk } from "../schemas/asr.ts"
import type { AudioSinkService, AudioSinkStream } from "./asr/types.ts"
import { AppConfig } from "./Config.ts"
import { Health } from "./Health.ts"
import { errorMessage } from "./error-message.ts"

/** Session ids become file names: only these characters are accepted. */
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
  /** Where a session's WAV file is (or will be) written. */
  readonly pathOf: (sessionId: string) => string
}

/**
 * The embedded default `AudioSink` (no ASR_GATEWAY_URL): one WAV file per session at
 * `<DATA_DIR>/recordings/<sessionId>.wav`, 16 kHz mono s16le. The header is written with zero
 * sizes at open and patched (RIFF and data sizes) on close, so a finished file is a normal,
 * playable WAV; chunks are written in the order they are sent. No transcripts.
 */
export const makeRecordingSink: Effect.Effect<RecordingSinkService, AudioSinkError, AppConfig | Health | Scope.Scope> = Effect.gen(function*() {
  const { service } = yield* AppConfig
  const health = yield* Health
  const directory = join(service.dataDir, "recordings")
  yield* Effect.tryPromise({
    try: () => mkdir(directory, { recursive: true }),
    catch: (error) => new AudioSinkError({ sessionId: "", message: `recordings directory ${directory}: ${errorMessage(error)}` })
  })
  const open_ = new Map<string, { bytes: number; chunks: number; close?: Effect.Effect<void> }>()
  let finished = 0
  yield* health.section("asr", Effect.sync(() => ({
    sink: "recording",
    directory,
    streams: open_.size,
    recordingsFinished: finished,
    bytesOpen: [...open_.values()].reduce((n, s) => n + s.bytes, 0)
  })))
  yield* Effect.logInfo(`audio sink: recording WAV files under ${directory} (no ASR_GATEWAY_URL)`)

  const pathOf = (sessionId: string) => join(directory, `${sessionId}.wav`)

  const openStream = (sessionId: string): Effect.Effect<AudioSinkStream, AudioSinkError, Scope.Scope> =>
    Effect.gen(function*() {
      if (!SAFE_ID.test(sessionId)) {
        return yield* new AudioSinkError({ sessionId, message: "session id is not usable as a file name" })
      }
      if (open_.has(sessionId)) return yield* new AudioSinkError({ sessionId, message: "a recording is already open for this session" })
      const path = pathOf(sessionId)
      const file = yield* Effect.tryPromise({
        try: async () => {
          const handle = await open(path, "w")
          await handle.write(wavHeader(0), 0, 44, 0)
          return handle
        },
        catch: (error) => new AudioSinkError({ sessionId, message: `recording ${path}: ${errorMessage(error)}` })
      })
      const state: { bytes: number; chunks: number; close?: Effect.Effect<void> } = { bytes: 0, chunks: 0 }
      open_.set(sessionId, state)
      const lock = yield* Semaphore.make(1)
      let closed = false

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

      const close: Effect.Effect<void> = lock.withPermit(Effect.suspend(() => {
        if (closed) return Effect.void
        closed = true
        return Effect.promise(async () => {
          await file.write(wavHeader(state.bytes), 0, 44, 0)
          await file.close()
        }).pipe(
          Effect.andThen(Effect.logInfo(`recording finished: ${path} (${state.chunks} chunks, ${state.bytes / 32} ms)`)),
          Effect.catchDefect((error) => Effect.logError(`recording ${path}: finalize failed: ${errorMessage(error)}`)),
          Effect.ensuring(Effect.sync(() => {
            open_.delete(sessionId)
            finished += 1
          })),
          Effect.annotateLogs({ sessionId, sink: "recording" })
        )
      }))
      state.close = close
      yield* Effect.addFinalizer(() => close)
      return { sessionId, send, transcripts: Stream.empty, close }
    })

  // Recordings still open at shutdown are finalized, so the files stay playable.
  yield* Effect.addFinalizer(() =>
    Effect.forEach([...open_.values()], (s) => s.close ?? Effect.void, { concurrency: "unbounded", discard: true }))
  const service_: RecordingSinkService = { kind: "recording", openStream, pathOf }
  return service_
})
