import * as grpc from "@grpc/grpc-js"
import { bindInsecure } from "./grpc.ts"
import { performance } from "node:perf_hooks"
import { constants, deflateRawSync, inflateRawSync } from "node:zlib"
import { AI_CORE_SERVICE, warmUp } from "../../src/layers/aicore/transport.ts"
import { findService, loadProto } from "../../src/layers/grpc/proto.ts"
import type { AiCoreFrame } from "../../src/schemas/aicore.ts"

/** A `FrameRequest` as proto-loader decodes it (message fields may be absent: null). */
export interface ReceivedFrame {
  readonly sessionId: string
  readonly frameNumber: number
  readonly frameType: string
  readonly codec: string
  readonly payload: ReadonlyArray<Buffer>
  readonly metadata: AiCoreFrame["metadata"] | null
  readonly network: AiCoreFrame["network"] | null
  /** Present only when the ingress sends them (proto3 `optional`); float32 on the wire. */
  readonly targetSavings?: number
  readonly qualityLevel?: number
}

type Call = grpc.ServerDuplexStream<ReceivedFrame, object>

export const REFERENCE_MODEL_TYPE = "zlib-deflate-raw"

/** The reference codec: one raw-deflate stream per packet payload (inverse: {@link inflatePayload}). */
export const deflatePayload = (payload: Uint8Array, level: number): Buffer => deflateRawSync(payload, { level })
export const inflatePayload = (payload: Uint8Array): Buffer => inflateRawSync(payload)

export interface ReferenceAiCoreOptions {
  /** zlib level 0-9 (default 6). */
  readonly level?: number
  /** Keep every request (tests); off for long runs (benchmarks, development). */
  readonly record?: boolean
}

/**
 * A reference AI Core: a real grpc-js server speaking `proto/aicore.proto` that compresses each
 * packet payload of a frame with raw deflate (node:zlib), so the sizes and ratio it reports are
 * true and `inflatePayload` restores every payload byte for byte. Lossless: quality score 1.
 *
 * Fault injection, all changeable while running: `latencyMs` (every answer is delayed), `errorEvery`
 * (every n-th frame is answered `success: false`), `failNext` (the next n frames are),
 * `disconnectAfter(n)` (the stream carrying the n-th next frame is cut with UNAVAILABLE before it is
 * answered), `stop()` (the server dies, connections cut) and `start()` again on the same port.
 */
export class ReferenceAiCore {
  latencyMs = 0
  errorEvery = 0
  failNext = 0
  readonly level: number
  readonly record: boolean
  /** Every request, in arrival order (with `record`). */
  readonly received: Array<ReceivedFrame> = []
  /** Requests answered (success or not), and streams opened, since start. */
  frames = 0
  answered = 0
  streams = 0
  private disconnectIn: number | undefined
  private server: grpc.Server | undefined
  private readonly calls = new Set<Call>()
  private port_ = 0

  constructor(options: ReferenceAiCoreOptions = {}) {
    this.level = options.level ?? constants.Z_DEFAULT_COMPRESSION
    this.record = options.record ?? true
  }

  get port(): number {
    return this.port_
  }
  get url(): string {
    return `127.0.0.1:${this.port_}`
  }

  /** Listens on `host:port` (port 0: a free one, then kept for restarts). */
  async start(port = this.port_, host = "127.0.0.1"): Promise<void> {
    const server = new grpc.Server()
    const definition = findService(loadProto("aicore.proto"), AI_CORE_SERVICE)
    const method = definition?.["Compress"]
    if (definition === undefined || method === undefined) throw new Error("aicore.proto: no AiCore/Compress")
    warmUp(method)
    server.addService(definition, { Compress: (call: Call) => this.handle(call) })
    this.port_ = await bindInsecure(server, host, port)
    this.server = server
  }

  /** Kills the server at once: open streams are cut, as if the process died. */
  stop(): void {
    this.server?.forceShutdown()
    this.server = undefined
    this.calls.clear()
  }

  /** Cuts the stream that carries the `n`-th next frame (1: the next one) before answering it. */
  disconnectAfter(n: number): void {
    this.disconnectIn = n
  }

  private handle(call: Call): void {
    this.calls.add(call)
    this.streams++
    call.on("data", (frame: ReceivedFrame) => {
      this.frames++
      if (this.record) this.received.push(frame)
      if (this.disconnectIn !== undefined && --this.disconnectIn <= 0) {
        this.disconnectIn = undefined
        this.calls.delete(call)
        call.emit("error", { code: grpc.status.UNAVAILABLE, details: "reference AI Core: stream cut" })
        return
      }
      const fail = this.failNext > 0 || (this.errorEvery > 0 && this.frames % this.errorEvery === 0)
      if (this.failNext > 0) this.failNext--
      const answer = () => {
        if (!this.calls.has(call)) return
        this.answered++
        call.write(fail ? this.failure(frame) : this.compress(frame))
      }
      if (this.latencyMs > 0) setTimeout(answer, this.latencyMs)
      else answer()
    })
    const forget = () => this.calls.delete(call)
    call.on("end", () => {
      forget()
      call.end()
    })
    call.on("error", forget)
    call.on("cancelled", forget)
  }

  private compress(frame: ReceivedFrame): object {
    const started = performance.now()
    let original = 0
    let compressed = 0
    const payload = frame.payload.map((p) => {
      const out = deflatePayload(p, this.level)
      original += p.byteLength
      compressed += out.byteLength
      return out
    })
    return {
      frameNumber: frame.frameNumber,
      success: true,
      payload,
      originalSizeBytes: original,
      compressedSizeBytes: compressed,
      compressionRatio: original === 0 ? 1 : compressed / original,
      qualityScore: 1,
      modelType: REFERENCE_MODEL_TYPE,
      modelHash: `zlib-${process.versions.zlib}-level${this.level}`,
      processingTimeMs: performance.now() - started,
      error: ""
    }
  }

  private failure(frame: ReceivedFrame): object {
    return { frameNumber: frame.frameNumber, success: false, error: "reference AI Core: injected failure" }
  }
}

export const startReferenceAiCore = async (options?: ReferenceAiCoreOptions): Promise<ReferenceAiCore> => {
  const core = new ReferenceAiCore(options)
  await core.start(0)
  return core
}
