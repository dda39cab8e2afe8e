// The ASR leg of bench/audio-ingest's "baseline + ASR" phase: what forwarding audio to the gateway
// costs at the least, next to bare mediasoup + decode. Each producer gets one grpc-js bidi stream
// to the fake gateway (the service's client settings, proto and chunk encoder), every chunk is
// written as it comes and transcripts are decoded as they come back. No queue, replay buffer,
// deadline, breaker or Effect: the service's sink does all of that on top.
import * as grpc from "@grpc/grpc-js"
import { audioChunkEncoder } from "../src/layers/asr/chunk-encoding.ts"
import { makeClient } from "../src/layers/grpc/client.ts"
import { loadMethod } from "../src/layers/grpc/proto.ts"
import type { AudioPath } from "../src/schemas/audio.ts"

/** One producer's stream: `write` sends a chunk, `end` half-closes. */
export interface BaselineAsrStream {
  readonly write: (sequence: number, captureTimeMs: number, pcm: Uint8Array) => void
  readonly end: () => void
}

/** Opens streams to the gateway at `url`; counts transcripts (so they are decoded, as the service's are). */
export const baselineAsr = (url: string) => {
  const method = loadMethod("asr.proto", "auralink.asr.v1.AsrGateway", "Stream")
  const client = makeClient(url, { baseMs: 100, maxMs: 1000 })
  let transcripts = 0
  const open = (sessionId: string, producerId: string, path: AudioPath): BaselineAsrStream => {
    const encode = audioChunkEncoder({ sessionId, producerId, path })
    const call = client.makeBidiStreamRequest(method.path, (encoded: Buffer) => encoded, method.responseDeserialize)
    call.on("data", () => transcripts++)
    // A stream cut at shutdown is not this phase's figure.
    call.on("error", (error: grpc.ServiceError) => error.code === grpc.status.CANCELLED || console.error(`baseline ASR stream: ${error.message}`))
    return { write: (sequence, captureTimeMs, pcm) => call.write(encode(sequence, captureTimeMs, pcm)), end: () => call.end() }
  }
  return { open, transcripts: () => transcripts, close: () => client.close() }
}
