import * as grpc from "@grpc/grpc-js"
import type { MethodDefinition } from "@grpc/proto-loader"
import { errorMessage } from "../error-message.ts"
import { loadMethod } from "../grpc/proto.ts"

export const AI_CORE_SERVICE = "auralink.aicore.v1.AiCore"

/** A `FrameRequest` as grpc-js encodes it (camelCase, enums by name). */
export interface FrameRequestMessage {
  readonly sessionId: string
  readonly frameNumber: number
  readonly frameType: "FRAME_TYPE_KEY" | "FRAME_TYPE_DELTA"
  readonly codec: string
  readonly payload: ReadonlyArray<Uint8Array>
  readonly metadata: object
  readonly network: object
  /** Absent: the AI Core's own choice (proto3 `optional`). */
  readonly targetSavings?: number
  readonly qualityLevel?: number
}

/** What a stream reports back: every message (undecoded) and, once, its end with a reason. */
export interface AiCoreStreamHandlers {
  readonly onResult: (message: unknown) => void
  readonly onClosed: (reason: string) => void
}

/** One open `Compress` stream. */
export interface AiCoreStream {
  readonly write: (message: FrameRequestMessage) => void
  /** Half-closes and cancels (the AI Core sees the end; `onClosed` is not called again). */
  readonly close: () => void
}

/**
 * How the client reaches an AI Core: grpc-js in the service, an in-process implementation in
 * the benchmark. `open` never fails synchronously; a stream that cannot be established reports
 * `onClosed`.
 */
export interface AiCoreTransport {
  readonly target: string
  readonly open: (handlers: AiCoreStreamHandlers) => AiCoreStream
  /** The channel's connectivity (grpc-js state name). */
  readonly connectivity: () => string
  /** False while the channel is in TRANSIENT_FAILURE or shut down (for readiness); an idle channel starts connecting. */
  readonly reachable: () => boolean
  readonly close: () => void
}

/**
 * Runs a sample request and result through `method`'s (de)serializers: protobufjs generates its
 * encoders and decoders on first use, which would otherwise cost the first frame of the process
 * tens of milliseconds of its deadline (and block the event loop for as long).
 */
export const warmUp = (method: MethodDefinition<object, object>): void => {
  const sample = new Uint8Array(8)
  method.requestDeserialize(method.requestSerialize({
    sessionId: "warm-up",
    frameNumber: 1,
    frameType: "FRAME_TYPE_KEY",
    codec: "CODEC_H264",
    payload: [sample],
    metadata: { ssrc: 1, payloadType: 96, rtpTimestamp: 1, firstSequence: 1, lastSequence: 1, packetCount: 1, lostPackets: 0, complete: true },
    network: { bitrateKbps: 1, packetLossPercent: 0, jitterMs: 0, rttMs: 0 }
  }))
  method.responseDeserialize(method.responseSerialize({ frameNumber: 1, success: true, payload: [sample], qualityScore: 1, modelType: "warm-up" }))
}

/** The `Compress` method of aicore.proto (path and (de)serializers), warmed up. */
export const loadCompressMethod = (): MethodDefinition<object, object> => {
  const method = loadMethod("aicore.proto", AI_CORE_SERVICE, "Compress")
  warmUp(method)
  return method
}

/** `Compress` streams over one grpc-js channel (`client`, closed with the transport). */
export const grpcTransport = (client: grpc.Client, method: MethodDefinition<object, object>, target: string): AiCoreTransport => ({
  target,
  open: (handlers) => {
    const call = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize)
    let ended = false
    const end = (reason: string) => {
      if (ended) return
      ended = true
      handlers.onClosed(reason)
    }
    call.on("data", handlers.onResult)
    call.on("error", (error: grpc.ServiceError) => end(`stream failed: ${error.message}`))
    call.on("status", (status: grpc.StatusObject) => end(`stream ended: ${grpc.status[status.code]} ${status.details}`))
    call.on("end", () => end("stream ended by the AI Core"))
    return {
      write: (message) => {
        if (ended) return
        try {
          call.write(message)
        } catch (error) {
          // A message protobufjs cannot encode, or a write after the call ended: the stream is unusable.
          call.cancel()
          end(`write failed: ${errorMessage(error)}`)
        }
      },
      close: () => {
        ended = true
        call.end()
        call.cancel()
      }
    }
  },
  connectivity: () => grpc.connectivityState[client.getChannel().getConnectivityState(false)],
  reachable: () => {
    const state = client.getChannel().getConnectivityState(true)
    return state !== grpc.connectivityState.TRANSIENT_FAILURE && state !== grpc.connectivityState.SHUTDOWN
  },
  close: () => client.close()
})
