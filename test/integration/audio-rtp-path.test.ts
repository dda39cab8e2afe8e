import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { createSocket } from "node:dgram"
import { request, signIn, str } from "../support/auth.ts"
import { startFakeAsr } from "../support/fake-asr.ts"
import { captureOpusRtp } from "../support/ffmpeg-rtp.ts"
import { eventually, mediaServer, opusRtpParameters, startSession, user } from "../support/media.ts"
import { checkToneSequence, concatSamples } from "../support/tones.ts"

// The first describe block must stay first: it is the first Opus stream of a freshly started service.

const fakeAsr = await startFakeAsr()
const TONES = [440, 660, 880, 550, 330]
/** ffmpeg's Opus RTP of the tone sequence, made once (payload type and SSRC rewritten per send). */
const captured = await captureOpusRtp({ tones: TONES, toneMs: 400, channels: 2 })
/** The burst: 266 packets (5.3 s), sent at once. */
const burst = await captureOpusRtp({ tones: TONES, toneMs: 1064, channels: 2 })
const SSRC = 1111
const PT = 100

/** One RTP packet as the test sends it: an audio packet from ffmpeg, or a padding-only probe. */
type Outgoing = { readonly kind: "audio"; readonly index: number } | { readonly kind: "padding"; readonly after: number }

/** The bytes of `packet` with our sequence number, payload type and SSRC; padding-only probes repeat the timestamp. */
const bytesOf = (packet: Outgoing, sequence: number, from = captured): Buffer => {
  const source = from[packet.kind === "audio" ? packet.index : packet.after]!.packet
  const header = Buffer.from(source.subarray(0, 12))
  const out = packet.kind === "audio" ? Buffer.concat([header, source.subarray(12)]) : Buffer.concat([header, Buffer.alloc(224)])
  out[0] = packet.kind === "audio" ? 0x80 : 0xa0 // V=2, P for the probe
  out[1] = (source[1]! & 0x80) | PT
  out.writeUInt16BE(sequence & 0xffff, 2)
  out.writeUInt32BE(SSRC, 8)
  if (packet.kind === "padding") out[out.length - 1] = 224
  return out
}

/** A session with a comedia plain transport producing Opus (PT 100, SSRC 1111); returns where to send RTP. */
const plainProducer = Effect.gen(function*() {
  const alice = yield* signIn(user("alice"))
  const id = yield* startSession(alice.headers)
  const plain = yield* request("POST", `/api/webrtc/${id}/plain-transports`, { comedia: true, rtcpMux: false }, alice.headers)
  assert.strictEqual(plain.status, 201, plain.text)
  const transportId = str(plain.json["id"])
  const produced = yield* request("POST", `/api/webrtc/${id}/plain-transports/${transportId}/produce`, {
    kind: "audio",
    rtpParameters: opusRtpParameters(PT, SSRC)
  }, alice.headers)
  assert.strictEqual(produced.status, 201, produced.text)
  return { id, port: Number(plain.json["port"]) }
})

/**
 * Sends `datagrams` to 127.0.0.1:`port`, `gapMs` apart, or with `gapMs` 0 as a burst: groups of 20
 * a millisecond apart (266 packets in ~15 ms; all in one go overflow the worker socket's default
 * kernel receive buffer on loopback, and the kernel drops them before mediasoup sees them).
 */
const sendAll = (port: number, datagrams: ReadonlyArray<Buffer>, gapMs: number) =>
  Effect.promise(async () => {
    const socket = createSocket("udp4")
    try {
      const sent: Array<Promise<void>> = []
      for (const [i, datagram] of datagrams.entries()) {
        sent.push(new Promise((resolve, reject) => socket.send(datagram, port, "127.0.0.1", (e) => (e ? reject(e) : resolve()))))
        if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs))
        else if (i % 20 === 19) await new Promise((r) => setTimeout(r, 1))
      }
      await Promise.all(sent)
    } finally {
      socket.close()
    }
  })

/** The value of one series of /metrics (0 when absent). */
const metric = (series: string) =>
  Effect.map(request("GET", "/metrics"), (res) => {
    const line = res.text.split("\n").find((l) => l.startsWith(series + " "))
    return line === undefined ? 0 : Number(line.slice(series.length + 1))
  })

const gatewayAudio = (id: string) => {
  const chunks = fakeAsr.chunks(id)
  const samples = concatSamples(chunks.map((c) => new Int16Array(c.pcm.buffer.slice(c.pcm.byteOffset, c.pcm.byteOffset + c.pcm.byteLength))))
  return { chunks, sequences: chunks.map((c) => c.sequence), samples }
}

const assertNoGaps = (sequences: ReadonlyArray<number>) => {
  for (let i = 1; i < sequences.length; i++) assert.strictEqual(sequences[i], sequences[i - 1]! + 1, `gap after ${sequences[i - 1]}`)
}

describe("Opus RTP over a PlainTransport to the ASR gateway", () => {
  layer(mediaServer({ ASR_GATEWAY_URL: fakeAsr.url }), { timeout: 60_000 })("a freshly started service", (it) => {
    it.effect("the very first stream's burst (all packets at once, right after produce) arrives whole", () =>
      Effect.gen(function*() {
        const { id, port } = yield* plainProducer
        const packets = burst.map((_, index): Outgoing => ({ kind: "audio", index }))
        assert.isAtLeast(packets.length, 266)
        yield* sendAll(port, packets.map((p, i) => bytesOf(p, 1000 + i, burst)), 0)
        yield* eventually(Effect.sync(() => fakeAsr.chunks(id).length >= packets.length), `${packets.length} chunks at the gateway`)
        yield* Effect.promise(() => new Promise((r) => setTimeout(r, 300)))
        const { sequences, samples } = gatewayAudio(id)

        assert.strictEqual(sequences.length, packets.length)
        assertNoGaps(sequences)
        const check = checkToneSequence(samples, 16_000, { tones: TONES })
        assert.isTrue(check.ok, check.reason)
        assert.strictEqual(yield* metric("auralink_audio_loss_total{path=\"rtp\"}"), 0)
        assert.strictEqual(yield* metric("auralink_audio_chunks_dropped_total{path=\"rtp\",reason=\"overflow\"}"), 0)
      }))
  })

  for (const threads of ["0", "1"]) {
    layer(mediaServer({ ASR_GATEWAY_URL: fakeAsr.url, AUDIO_JITTER_BUFFER_MS: "60", AUDIO_DECODE_THREADS: threads }), { timeout: 60_000 })(
      `jitter buffer (AUDIO_DECODE_THREADS=${threads})`,
      (it) => {
        it.effect("swapped packets lose nothing, padding-only probes leave no gap, a lost packet is concealed and counted", () =>
          Effect.gen(function*() {
            const { id, port } = yield* plainProducer
            // The stream as sent by the client: audio, with two padding-only probes after packets 30 and 60.
            const stream: Array<Outgoing> = []
            captured.forEach((_, index) => {
              stream.push({ kind: "audio", index })
              if (index === 30 || index === 60) stream.push({ kind: "padding", after: index }, { kind: "padding", after: index })
            })
            const numbered = stream.map((packet, i) => ({ packet, bytes: bytesOf(packet, 5000 + i) }))
            // The network: swaps two pairs, loses audio packet 70.
            const at = (index: number) => numbered.findIndex((p) => p.packet.kind === "audio" && p.packet.index === index)
            const wire = [...numbered]
            for (const index of [20, 50]) {
              const i = at(index)
              ;[wire[i], wire[i + 1]] = [wire[i + 1]!, wire[i]!]
            }
            wire.splice(wire.findIndex((p) => p.packet.kind === "audio" && p.packet.index === 70), 1)
            const before = {
              loss: yield* metric("auralink_audio_loss_total{path=\"rtp\"}"),
              reordered: yield* metric("auralink_audio_reordered_total{path=\"rtp\"}"),
              concealed: yield* metric("auralink_audio_concealed_total{path=\"rtp\"}"),
              late: yield* metric("auralink_audio_chunks_dropped_total{path=\"rtp\",reason=\"late\"}")
            }
            yield* sendAll(port, wire.map((p) => p.bytes), 10)
            yield* eventually(Effect.sync(() => fakeAsr.chunks(id).length >= captured.length), `${captured.length} chunks at the gateway`)
            yield* Effect.promise(() => new Promise((r) => setTimeout(r, 300)))
            const { sequences, samples } = gatewayAudio(id)
            // Every audio packet's place is there (packet 70's by concealment); the probes took none.
            assert.strictEqual(sequences.length, captured.length)
            assertNoGaps(sequences)
            const check = checkToneSequence(samples, 16_000, { tones: TONES })
            assert.isTrue(check.ok, check.reason)
            assert.strictEqual((yield* metric("auralink_audio_loss_total{path=\"rtp\"}")) - before.loss, 1)
            assert.strictEqual((yield* metric("auralink_audio_concealed_total{path=\"rtp\"}")) - before.concealed, 1)
            assert.strictEqual((yield* metric("auralink_audio_reordered_total{path=\"rtp\"}")) - before.reordered, 2)
            assert.strictEqual((yield* metric("auralink_audio_chunks_dropped_total{path=\"rtp\",reason=\"late\"}")) - before.late, 0)
          }))

        it.effect("a packet later than the window is dropped and counted as late; the hole was loss", () =>
          Effect.gen(function*() {
            const { id, port } = yield* plainProducer
            const numbered = captured.slice(0, 40).map((_, index) => bytesOf({ kind: "audio", index }, 9000 + index))
            // Packet 10 arrives after packets 11..30 (well past 60 ms at 10 ms spacing).
            const wire = [...numbered.slice(0, 10), ...numbered.slice(11, 31), numbered[10]!, ...numbered.slice(31)]
            const late = yield* metric("auralink_audio_chunks_dropped_total{path=\"rtp\",reason=\"late\"}")
            const loss = yield* metric("auralink_audio_loss_total{path=\"rtp\"}")
            yield* sendAll(port, wire, 10)
            yield* eventually(Effect.sync(() => fakeAsr.chunks(id).length >= 40), "40 chunks at the gateway (one concealed)")
            yield* Effect.promise(() => new Promise((r) => setTimeout(r, 300)))
            assert.strictEqual(fakeAsr.chunks(id).length, 40)
            assertNoGaps(gatewayAudio(id).sequences)
            assert.strictEqual((yield* metric("auralink_audio_chunks_dropped_total{path=\"rtp\",reason=\"late\"}")) - late, 1)
            assert.strictEqual((yield* metric("auralink_audio_loss_total{path=\"rtp\"}")) - loss, 1)
          }))
      }
    )
  }
})
