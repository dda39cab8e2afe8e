import * as grpc from "@grpc/grpc-js"
import { bindInsecure } from "./grpc.ts"
import { findService, loadProto } from "../../src/layers/grpc/proto.ts"

export interface ReceivedChunk {
  readonly sequence: number
  readonly captureTimeMs: number
  readonly pcm: Buffer
  readonly sampleRate: number
  /** The producer (audio source) whose stream carried it, and its path ("rtp" or "datachannel"). */
  readonly producerId: string
  readonly path: string
  /** Which stream (connection) of the session delivered it, from 1. */
  readonly stream: number
  /** When the fake read it (ms since the Unix epoch), for capture -> ASR latency. */
  readonly receivedAtMs: number
  /** The client's address and port: which HTTP/2 connection carried the stream. */
  readonly peer: string
}

interface ChunkMessage {
  readonly sessionId: string
  readonly sequence: number
  readonly captureTimeMs: string | number
  readonly pcm: Buffer
  readonly sampleRate: number
  readonly producerId: string
  readonly path: string
}

const NO_PCM = Buffer.alloc(0)

type Call = grpc.ServerDuplexStream<ChunkMessage, object>

/**
 * A fake ASR gateway: a real grpc-js server speaking proto/asr.proto on 127.0.0.1. Records every
 * chunk per session in arrival order (with its producer id), answers one final transcript per second of audio of a
 * stream ("chunk N..M") plus one for the remainder when the client half-closes, and can be
 * stopped and restarted on the same port, slowed (each read delayed: back-pressure) and made to
 * fail its streams.
 */
export class FakeAsrGateway {
  readonly received = new Map<string, Array<ReceivedChunk>>()
  readonly streamsOpened = new Map<string, number>()
  /** Milliseconds each received chunk holds the stream before the next is read. */
  readDelayMs = 0
  /** Streams still to fail with UNAVAILABLE as soon as they open. */
  failNextStreams = 0
  /**
   * Whether a recorded chunk keeps a copy of its samples. bench/audio-ingest turns it off: it
   * counts sequences only, and 150 sessions' samples held between its counts (~100 MB) gave this
   * process GC pauses that stalled its reads, which the service then measured as its own latency.
   */
  keepPcm = true
  private stalled = false
  private readonly paused = new Set<Call>()
  private server: grpc.Server | undefined
  private readonly calls = new Set<Call>()
  private port_ = 0

  get port(): number {
    return this.port_
  }
  get url(): string {
    return `127.0.0.1:${this.port_}`
  }

  /** Starts on `port` (0: any free port, then kept for restarts) of `host`. */
  async start(port = this.port_, host = "127.0.0.1"): Promise<void> {
    const server = new grpc.Server()
    const definition = findService(loadProto("asr.proto"), "auralink.asr.v1.AsrGateway")
    if (definition === undefined) throw new Error("asr.proto: no AsrGateway")
    server.addService(definition, { Stream: (call: Call) => this.handle(call) })
    this.port_ = await bindInsecure(server, host, port)
    this.server = server
  }

  /** Kills the server at once (open streams are cut, as if the process died). */
  stop(): void {
    this.server?.forceShutdown()
    this.server = undefined
    this.calls.clear()
  }

  /** Fails every open stream with `code`. */
  failStreams(code: grpc.status = grpc.status.UNAVAILABLE): void {
    for (const call of this.calls) call.emit("error", { code, details: "fake ASR: stream failed" })
    this.calls.clear()
  }

  /** Stops reading every stream after its next message (HTTP/2 flow control then stalls the client). */
  stall(): void {
    this.stalled = true
  }

  /** Reads again: resumes every stalled stream. */
  unstall(): void {
    this.stalled = false
    for (const call of this.paused) call.resume()
    this.paused.clear()
  }

  chunks(sessionId: string): ReadonlyArray<ReceivedChunk> {
    return this.received.get(sessionId) ?? []
  }

  /** A session's chunks by producer id (each producer has its own stream). */
  byProducer(sessionId: string): ReadonlyMap<string, ReadonlyArray<ReceivedChunk>> {
    const by = new Map<string, Array<ReceivedChunk>>()
    for (const c of this.chunks(sessionId)) by.set(c.producerId, [...(by.get(c.producerId) ?? []), c])
    return by
  }

  /** Distinct sequence numbers received for a session, ascending (what a de-duplicating gateway keeps). */
  sequences(sessionId: string): Array<number> {
    return [...new Set(this.chunks(sessionId).map((c) => c.sequence))].sort((a, b) => a - b)
  }

  private handle(call: Call): void {
    if (this.failNextStreams > 0) {
      this.failNextStreams -= 1
      call.emit("error", { code: grpc.status.UNAVAILABLE, details: "fake ASR: refused" })
      return
    }
    this.calls.add(call)
    let sessionId = ""
    let producerId = ""
    const peer = call.getPeer()
    let stream = 0
    let pending: Array<ReceivedChunk> = []
    let pendingBytes = 0
    let offsetMs = 0
    const flush = () => {
      const first = pending[0]
      const last = pending[pending.length - 1]
      if (first === undefined || last === undefined) return
      const durationMs = pendingBytes / 32
      call.write({
        sessionId,
        producerId,
        text: `chunk ${first.sequence}..${last.sequence}`,
        isFinal: true,
        startMs: Math.round(offsetMs),
        endMs: Math.round(offsetMs + durationMs),
        confidence: 0.9
      })
      offsetMs += durationMs
      pending = []
      pendingBytes = 0
    }
    call.on("data", (message: ChunkMessage) => {
      if (sessionId === "") {
        sessionId = message.sessionId
        producerId = message.producerId
        stream = (this.streamsOpened.get(sessionId) ?? 0) + 1
        this.streamsOpened.set(sessionId, stream)
      }
      const chunk: ReceivedChunk = {
        sequence: message.sequence,
        captureTimeMs: Number(message.captureTimeMs),
        pcm: this.keepPcm ? Buffer.from(message.pcm) : NO_PCM,
        sampleRate: message.sampleRate,
        producerId: message.producerId,
        path: message.path,
        stream,
        receivedAtMs: Date.now(),
        peer
      }
      const list = this.received.get(sessionId) ?? []
      list.push(chunk)
      this.received.set(sessionId, list)
      pending.push(chunk)
      pendingBytes += message.pcm.byteLength
      if (pendingBytes >= 32_000) flush()
      if (this.stalled) {
        call.pause()
        this.paused.add(call)
      } else if (this.readDelayMs > 0) {
        call.pause()
        setTimeout(() => call.resume(), this.readDelayMs)
      }
    })
    call.on("end", () => {
      flush()
      this.calls.delete(call)
      call.end()
    })
    call.on("error", () => this.calls.delete(call))
    call.on("cancelled", () => this.calls.delete(call))
  }
}

export const startFakeAsr = async (): Promise<FakeAsrGateway> => {
  const fake = new FakeAsrGateway()
  await fake.start(0)
  return fake
}
