// An Opus decode thread (see AudioDecoders): holds the decoders of the streams assigned to it and
// answers every batch with the outcomes of its packets, in order. Plain Node: no Effect runtime here.
import { parentPort } from "node:worker_threads"
import { Result } from "effect"
import { OpusRtpDecoder } from "./opus-rtp-decoder.ts"
import { type DecodeBatch, type DecodeOutcome, type DecodeResults, PACKET_FIELDS } from "./decode-protocol.ts"

const port = parentPort
if (port === null) throw new Error("decode-worker.ts runs as a worker thread")

// Compiles the WebAssembly module now, not on the first stream's first packet (~200 ms here).
void OpusRtpDecoder.make().then((decoder) => decoder.free())

const pending = new Map<number, Promise<OpusRtpDecoder>>()
const ready = new Map<number, OpusRtpDecoder>()

const decoderOf = async (stream: number): Promise<OpusRtpDecoder | undefined> => {
  const decoder = ready.get(stream)
  if (decoder !== undefined) return decoder
  const made = await pending.get(stream)
  if (made !== undefined && pending.has(stream)) ready.set(stream, made)
  return made
}

const handle = async (batch: DecodeBatch): Promise<void> => {
  for (const { stream, options } of batch.open) pending.set(stream, OpusRtpDecoder.make(options))
  const bytes = new Uint8Array(batch.bytes)
  const outcomes: Array<DecodeOutcome> = []
  const transfer: Array<ArrayBuffer> = []
  const p = batch.packets
  for (let i = 0; i < p.length; i += PACKET_FIELDS) {
    const stream = p[i]!
    const receivedAt = p[i + 4]!
    const decoder = await decoderOf(stream)
    if (decoder === undefined) continue // closed meanwhile
    const result = decoder.decode(bytes.subarray(p[i + 1], p[i + 1]! + p[i + 2]!), p[i + 3])
    if (Result.isFailure(result)) {
      outcomes.push({ stream, receivedAt, rejected: result.failure })
    } else {
      outcomes.push({ stream, receivedAt, decoded: result.success })
      for (const chunk of [...result.success.concealed, result.success.chunk]) {
        const samples = chunk?.samples.buffer
        if (samples instanceof ArrayBuffer) transfer.push(samples)
      }
    }
  }
  for (const stream of batch.close) {
    const decoder = await decoderOf(stream)
    pending.delete(stream)
    ready.delete(stream)
    decoder?.free()
  }
  const results: DecodeResults = { outcomes, closed: batch.close }
  port.postMessage(results, transfer)
}

// Batches are handled one after another, so outcomes leave in the order packets came in.
let chain: Promise<void> = Promise.resolve()
port.on("message", (batch: DecodeBatch) => {
  chain = chain.then(() => handle(batch))
})
