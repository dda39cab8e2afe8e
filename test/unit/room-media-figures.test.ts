import { assert, describe, it } from "@effect/vitest"
import { Option } from "effect"
import type { ProducerStats, RtpStreamStats, SessionStats } from "../../src/layers/MediaServer.ts"
import { intervalFigures, qualityLevelOf } from "../../src/programs/rooms/media-figures.ts"
import { withMediaState } from "../../src/programs/rooms/livekit-metadata.ts"
import { ProducerId, RoomName, TransportId } from "../../src/schemas/ids.ts"
import type { MediaState } from "../../src/schemas/rooms.ts"

const stream = (over: Partial<RtpStreamStats> = {}): RtpStreamStats => ({
  ssrc: 1111,
  mimeType: "audio/opus",
  clockRate: 48_000,
  packetCount: 0,
  packetsLost: 0,
  fractionLost: 0,
  jitterMs: 0,
  bitrateBps: 0,
  roundTripTimeMs: null,
  score: 10,
  ...over
})

const producer = (kind: "audio" | "video", streams: ReadonlyArray<RtpStreamStats>, id = kind): ProducerStats => ({
  id: ProducerId.make(id),
  kind,
  transportId: TransportId.make("t"),
  paused: false,
  streams
})

const stats = (...producers: ReadonlyArray<ProducerStats>): SessionStats => ({ producers, transports: [] })

const state: MediaState = {
  conferenceId: RoomName.make("r"),
  activeStreams: 1,
  totalBandwidthKbps: 64,
  qualityLevel: "audio",
  aicEnabled: false,
  compressionRatio: 1,
  sessions: 1,
  updatedAt: "2026-01-01T00:00:00.000Z"
}

describe("room media figures", () => {
  it("quality: none without producers, audio without video, video lines estimated from the top stream's bitrate", () => {
    assert.strictEqual(qualityLevelOf([]), "none")
    assert.strictEqual(qualityLevelOf([producer("audio", [stream({ bitrateBps: 64_000 })])]), "audio")
    const video = (kbps: number) => qualityLevelOf([producer("video", [stream({ bitrateBps: 150_000 }), stream({ ssrc: 2, bitrateBps: kbps * 1000 })])])
    assert.deepStrictEqual([video(200), video(700), video(2500), video(4000)], ["LD", "SD", "HD", "FHD"])
  })

  it("loss over the interval from counter differences; jitter of the worst audio stream, RTT of the worst; bandwidth summed", () => {
    const first = intervalFigures(stats(producer("audio", [stream({ packetCount: 100, packetsLost: 0, jitterMs: 3, bitrateBps: 64_000 })])), new Map())
    assert.deepStrictEqual(first.figures, { packetLossPercent: 0, jitterMs: 3, rttMs: null, bandwidthKbps: 64 })
    const second = intervalFigures(
      stats(
        producer("audio", [stream({ packetCount: 190, packetsLost: 10, jitterMs: 4, bitrateBps: 64_000 })]),
        producer("video", [stream({ ssrc: 5, packetCount: 0, jitterMs: 12, roundTripTimeMs: 40, bitrateBps: 500_000 })])
      ),
      first.counters
    )
    assert.deepStrictEqual(second.figures, { packetLossPercent: 10, jitterMs: 4, rttMs: 40, bandwidthKbps: 564 })
    const videoOnly = intervalFigures(stats(producer("video", [stream({ ssrc: 5, packetCount: 50, jitterMs: 12, bitrateBps: 500_000 })])), new Map())
    assert.strictEqual(videoOnly.figures?.jitterMs, 12)
    assert.isUndefined(intervalFigures(stats(), second.counters).figures)
  })

  it("LiveKit metadata: the auralink key set or removed, other keys kept, non-object metadata kept under `metadata`", () => {
    const set = (metadata: string) => Option.map(withMediaState(metadata, Option.some(state)), (text): unknown => JSON.parse(text))
    assert.deepStrictEqual(set("{\"topic\":\"demo\"}"), Option.some({ topic: "demo", auralink: state }))
    assert.deepStrictEqual(set(""), Option.some({ auralink: state }))
    assert.deepStrictEqual(set("plain words"), Option.some({ metadata: "plain words", auralink: state }))
    assert.deepStrictEqual(set("[1,2]"), Option.some({ metadata: "[1,2]", auralink: state }))
    assert.deepStrictEqual(withMediaState(JSON.stringify({ topic: "demo", auralink: state }), Option.none()), Option.some("{\"topic\":\"demo\"}"))
    assert.deepStrictEqual(withMediaState(JSON.stringify({ auralink: state }), Option.none()), Option.some(""))
    assert.deepStrictEqual(withMediaState("{\"topic\":\"demo\"}", Option.none()), Option.none())
  })
})
