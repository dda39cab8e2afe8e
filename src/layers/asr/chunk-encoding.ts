import { SINK_SAMPLE_RATE } from "../../schemas/asr.ts"
import type { AudioStreamKey } from "./types.ts"

// `AudioChunk` (proto/asr.proto) in protobuf's wire format, written directly: a stream's constant
// fields are encoded once, so a chunk costs its three varints and one copy of its samples (through
// protobufjs it was an object, a conversion and a writer per chunk, about 4 % of the main thread
// at 80 sessions in bench/audio-ingest). The gateway decodes it as any protobuf message.

const VARINT = 0
const LENGTH_DELIMITED = 2
const tag = (field: number, wireType: number) => (field << 3) | wireType

/** Bytes of `n` (a non-negative integer up to 2^53) as a varint. */
const varintLength = (n: number): number => {
  let length = 1
  for (let rest = n; rest >= 128; rest = Math.floor(rest / 128)) length++
  return length
}

/** Writes `n` as a varint at `offset`; the offset after it. Arithmetic, not bit operations: capture times exceed 32 bits. */
const writeVarint = (out: Uint8Array, offset: number, n: number): number => {
  let at = offset
  let rest = n
  while (rest >= 128) {
    out[at++] = (rest % 128) | 0x80
    rest = Math.floor(rest / 128)
  }
  out[at++] = rest
  return at
}

// No buffer here is a slice of Node's shared pool: a stream's fields live as long as the stream and
// a message as long as the replay buffer, and a pooled slice keeps its whole 64 KB pool block alive
// (heap snapshot at 100 sessions: 4 MB of blocks held by these fields, and the chunks' own blocks
// for the replay window). Messages are carved from the stream's own slabs instead (see `slabs`).

/**
 * Bytes of one slab: about 40 RTP chunks (20 ms, 740 bytes) or 24 data-channel chunks (40 ms).
 * One allocation per slab instead of one per message: with an ArrayBuffer per message (250 per
 * stream held for the 5 s replay window) their allocation alone was 11 ms a second of the main
 * thread at 100 sessions (bench/audio-ingest profile), 0.3 ms where messages are not kept.
 */
export const SLAB_BYTES = 32 * 1024

/**
 * Memory for one stream's messages, in order: each taken from the current slab, a new slab when it
 * is full. The replay buffer drops messages oldest first, so a slab is freed once its last message
 * is dropped: what a stream holds is its window plus at most one slab.
 */
const slabs = () => {
  let slab = Buffer.allocUnsafeSlow(0)
  let used = 0
  return (size: number): Buffer => {
    if (size > SLAB_BYTES) return Buffer.allocUnsafeSlow(size)
    if (used + size > slab.length) {
      slab = Buffer.allocUnsafeSlow(SLAB_BYTES)
      used = 0
    }
    const out = slab.subarray(used, used + size)
    used += size
    return out
  }
}

const varintField = (field: number, n: number): Buffer => {
  const out = Buffer.alloc(1 + varintLength(n))
  writeVarint(out, writeVarint(out, 0, tag(field, VARINT)), n)
  return out
}

const stringField = (field: number, text: string): Buffer => {
  const length = Buffer.byteLength(text, "utf8")
  const out = Buffer.alloc(1 + varintLength(length) + length)
  const at = writeVarint(out, writeVarint(out, 0, tag(field, LENGTH_DELIMITED)), length)
  out.write(text, at, "utf8")
  return out
}

/** The fields, one after the other, in a buffer of their own. */
const joined = (fields: ReadonlyArray<Buffer>): Buffer => {
  const out = Buffer.alloc(fields.reduce((n, f) => n + f.length, 0))
  let at = 0
  for (const field of fields) {
    out.set(field, at)
    at += field.length
  }
  return out
}

/** The encoder of one stream's chunks: fields 1 (session), 2 (sequence), 3 (capture time), 4 (pcm), 5 (rate), 6 (producer), 7 (path). */
export const audioChunkEncoder = (key: AudioStreamKey) => {
  const head = stringField(1, key.sessionId)
  const tail = joined([varintField(5, SINK_SAMPLE_RATE), stringField(6, key.producerId), stringField(7, key.path)])
  const allocate = slabs()
  return (sequence: number, captureTimeMs: number, pcm: Uint8Array): Buffer => {
    const size = head.length + 1 + varintLength(sequence) + 1 + varintLength(Math.trunc(captureTimeMs)) + 1 + varintLength(pcm.length) + pcm.length +
      tail.length
    const out = allocate(size)
    out.set(head, 0)
    let at = head.length
    out[at++] = tag(2, VARINT)
    at = writeVarint(out, at, sequence)
    out[at++] = tag(3, VARINT)
    at = writeVarint(out, at, Math.trunc(captureTimeMs))
    out[at++] = tag(4, LENGTH_DELIMITED)
    at = writeVarint(out, at, pcm.length)
    out.set(pcm, at)
    out.set(tail, at + pcm.length)
    return out
  }
}
