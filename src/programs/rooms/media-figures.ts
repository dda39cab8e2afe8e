import type { ProducerStats, SessionStats } from "../../layers/MediaServer.ts"
import type { MediaState } from "../../schemas/rooms.ts"

/** Producers carrying media now: open and not paused. */
export const liveProducers = (stats: SessionStats): ReadonlyArray<ProducerStats> => stats.producers.filter((p) => !p.paused)

export const bandwidthKbps = (producers: ReadonlyArray<ProducerStats>): number =>
  producers.reduce((sum, p) => sum + p.streams.reduce((n, s) => n + s.bitrateBps, 0), 0) / 1000

/**
 * The resolution a video stream of this bitrate most likely has. mediasoup never sees frame
 * dimensions, so lines are estimated from libwebrtc's simulcast table (max bitrates 200 kbps at
 * 180p, 700 at 360p, 1200 at 540p, 2500 at 720p, 5000 at 1080p): below 400 kbps `LD`, below 1300
 * `SD`, below 3000 `HD`, above `FHD`.
 */
const videoLevelOf = (kbps: number): MediaState["qualityLevel"] => kbps < 400 ? "LD" : kbps < 1300 ? "SD" : kbps < 3000 ? "HD" : "FHD"

/** `none` without live producers, `audio` without live video, else the level of the best video stream (its top simulcast layer). */
export const qualityLevelOf = (producers: ReadonlyArray<ProducerStats>): MediaState["qualityLevel"] => {
  if (producers.length === 0) return "none"
  const video = producers.filter((p) => p.kind === "video")
  if (video.length === 0) return "audio"
  return videoLevelOf(Math.max(0, ...video.flatMap((p) => p.streams.map((s) => s.bitrateBps))) / 1000)
}

/** Received and lost packet counters of one RTP stream, as last read (`<producer>/<ssrc>`). */
export type StreamCounters = ReadonlyMap<string, { readonly packetCount: number; readonly packetsLost: number }>

/** One interval's QoS figures of a session's media, as measured by mediasoup. */
export interface MeasuredFigures {
  readonly packetLossPercent: number
  readonly jitterMs: number
  readonly rttMs: number | null
  readonly bandwidthKbps: number
}

const clamp = (value: number, min: number, max: number) => Math.min(max, Math.max(min, value))

/**
 * The interval's figures from this read and the counters of the previous one: loss from all streams'
 * counter differences (a stream first seen counts from its start); jitter of the worst audio stream
 * (of the worst video stream without audio: MOS is a voice-quality model, and a video stream's RFC
 * 3550 jitter also counts frame pacing, its packets of one frame sharing a timestamp); round trip of
 * the worst stream that has one; bandwidth summed. The counters to keep for the next interval come
 * with it. None without live streams.
 */
export const intervalFigures = (
  stats: SessionStats,
  previous: StreamCounters
): { readonly figures: MeasuredFigures | undefined; readonly counters: StreamCounters } => {
  const producers = liveProducers(stats)
  const streams = producers.flatMap((p) => p.streams.map((s) => ({ key: `${p.id}/${s.ssrc}`, kind: p.kind, ...s })))
  const counters = new Map(streams.map((s) => [s.key, { packetCount: s.packetCount, packetsLost: s.packetsLost }]))
  if (streams.length === 0) return { figures: undefined, counters }
  let received = 0
  let lost = 0
  for (const s of streams) {
    const before = previous.get(s.key) ?? { packetCount: 0, packetsLost: 0 }
    received += Math.max(0, s.packetCount - before.packetCount)
    // mediasoup's lost count can fall back (late packets arrive): the interval then lost none.
    lost += Math.max(0, s.packetsLost - before.packetsLost)
  }
  const audio = streams.filter((s) => s.kind === "audio")
  const timed = audio.length > 0 ? audio : streams
  const rtts = streams.flatMap((s) => s.roundTripTimeMs === null ? [] : [s.roundTripTimeMs])
  return {
    figures: {
      packetLossPercent: received + lost === 0 ? 0 : clamp((lost / (received + lost)) * 100, 0, 100),
      jitterMs: clamp(Math.max(...timed.map((s) => s.jitterMs)), 0, 60_000),
      rttMs: rtts.length === 0 ? null : clamp(Math.max(...rtts), 0, 60_000),
      bandwidthKbps: bandwidthKbps(producers)
    },
    counters
  }
}
