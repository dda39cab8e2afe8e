import { describe, expect, it } from "vitest"
import { audioChunkEncoder, SLAB_BYTES } from "../../src/layers/asr/chunk-encoding.ts"
import { loadMethod } from "../../src/layers/grpc/proto.ts"

// The hand-written AudioChunk encoding, read back by protobufjs (through @grpc/proto-loader, as a
// gateway built on the published proto would read it), and compared with protobufjs's own encoding.
const method = loadMethod("asr.proto", "auralink.asr.v1.AsrGateway", "Stream")
const key = { sessionId: "6f1c2a4e-0000-4000-8000-000000000001", producerId: "producé-7", path: "rtp" as const }

describe("AudioChunk encoding", () => {
  const cases = [
    { sequence: 0, captureTimeMs: 0, pcm: new Uint8Array(0) },
    { sequence: 1, captureTimeMs: 1_764_633_600_123, pcm: Uint8Array.from([1, 2, 3, 255]) },
    { sequence: 0xffff_ffff, captureTimeMs: 2 ** 53 - 1, pcm: new Uint8Array(640).map((_, i) => i % 251) },
    { sequence: 127, captureTimeMs: 128, pcm: new Uint8Array(200) },
    { sequence: 65_536, captureTimeMs: 1_764_633_600_000.75, pcm: new Uint8Array(1) }
  ]
  for (const c of cases) {
    it(`sequence ${c.sequence}, capture ${c.captureTimeMs}, ${c.pcm.length} pcm bytes: decodes to the same fields`, () => {
      const encoded = audioChunkEncoder(key)(c.sequence, c.captureTimeMs, c.pcm)
      const decoded = method.requestDeserialize(encoded)
      expect(decoded).toEqual({
        sessionId: key.sessionId,
        sequence: c.sequence,
        captureTimeMs: String(Math.trunc(c.captureTimeMs)),
        pcm: Buffer.from(c.pcm),
        sampleRate: 16_000,
        producerId: key.producerId,
        path: "rtp"
      })
      // Byte for byte what protobufjs writes for the same message (where it writes every field).
      if (c.sequence !== 0 && c.captureTimeMs !== 0 && c.pcm.length > 0) {
        const reference = method.requestSerialize({
          ...key,
          sequence: c.sequence,
          captureTimeMs: Math.trunc(c.captureTimeMs),
          pcm: Buffer.from(c.pcm),
          sampleRate: 16_000
        })
        expect(encoded.equals(reference)).toBe(true)
      }
    })
  }

  it("messages are carved from their stream's own slabs, never from Node's shared buffer pool (the replay buffer keeps them for seconds)", () => {
    const encode = audioChunkEncoder(key)
    const pooled = Buffer.from("pooled").buffer
    const first = encode(1, 8, new Uint8Array(640))
    const second = encode(2, 8, new Uint8Array(640))
    expect(second.buffer).toBe(first.buffer) // one slab for both
    expect(first.buffer.byteLength).toBe(SLAB_BYTES)
    expect(first.buffer).not.toBe(pooled)
    expect(method.requestDeserialize(second)).toMatchObject({ sequence: 2 })
    // Another stream has slabs of its own.
    expect(audioChunkEncoder(key)(1, 8, new Uint8Array(640)).buffer).not.toBe(first.buffer)
    // A full slab is followed by a new one; the messages in it stay intact.
    const messages = Array.from({ length: 100 }, (_, i) => encode(i + 3, 8, new Uint8Array(640).fill(i)))
    expect(new Set(messages.map((m) => m.buffer)).size).toBeGreaterThan(1)
    messages.forEach((m, i) => expect(method.requestDeserialize(m)).toMatchObject({ sequence: i + 3, pcm: Buffer.from(new Uint8Array(640).fill(i)) }))
    // A message larger than a slab gets memory of its own, of its own size.
    const large = encode(200, 8, new Uint8Array(SLAB_BYTES))
    expect(large.buffer.byteLength).toBe(large.byteLength)
  })
})
