// The fake ASR gateway (test/support/fake-asr.ts) in a process of its own, driven over Node IPC by
// bench/audio-ingest: at a few hundred sessions, receiving every stream's gRPC messages is real work,
// and sharing an event loop with the load generator would slow both and show up as server latency.
import { Schema } from "effect"
import { FakeAsrGateway } from "../test/support/fake-asr.ts"

const Request = Schema.Union([
  Schema.Struct({
    type: Schema.Literal("count"),
    id: Schema.Number,
    ranges: Schema.Array(Schema.Struct({ sessionId: Schema.String, from: Schema.Number, to: Schema.Number }))
  }),
  Schema.Struct({ type: Schema.Literal("latencies"), id: Schema.Number, sessionId: Schema.String }),
  Schema.Struct({ type: Schema.Literal("first"), id: Schema.Number, sessionId: Schema.String })
])
const decodeRequest = Schema.decodeUnknownSync(Request)

const send = (message: unknown) => process.send?.(message)
const fake = new FakeAsrGateway()
fake.keepPcm = false // the bench counts sequences only
// A session's first chunk sequence: the index 0 of what the bench sent. mediasoup (3.19+) starts
// a consumer's RTP sequence numbers at a random value, so Opus chunks count from there.
const bases = new Map<string, number>()
const relative = (sessionId: string, sequence: number): number => {
  const base = bases.get(sessionId) ?? sequence
  bases.set(sessionId, base)
  return (sequence - base) >>> 0
}
await fake.start(0)

process.on("message", (raw: unknown) => {
  const request = decodeRequest(raw)
  if (request.type === "count") {
    // Distinct sequences in [from, to) per session; what a later window may still count is kept.
    let received = 0
    for (const { sessionId, from, to } of request.ranges) {
      const seen = new Set<number>()
      for (const c of fake.chunks(sessionId)) {
        const index = relative(sessionId, c.sequence)
        if (index >= from && index < to) seen.add(index)
      }
      received += seen.size
      fake.received.set(sessionId, fake.chunks(sessionId).filter((c) => relative(sessionId, c.sequence) >= to))
    }
    send({ id: request.id, received })
  } else if (request.type === "first") {
    // When the session's first chunk arrived (ms since the epoch; absent: none yet).
    const first = fake.chunks(request.sessionId)[0]
    send(first === undefined ? { id: request.id } : { id: request.id, firstAtMs: first.receivedAtMs })
  } else {
    // Capture -> receipt of each sequence's first arrival.
    const firstSeen = new Map<number, number>()
    for (const c of fake.chunks(request.sessionId)) if (!firstSeen.has(c.sequence)) firstSeen.set(c.sequence, c.receivedAtMs - c.captureTimeMs)
    send({ id: request.id, latencies: [...firstSeen.values()] })
  }
})
process.on("disconnect", () => {
  fake.stop()
  process.exit(0)
})
send({ id: 0, url: fake.url })
