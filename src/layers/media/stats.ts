import type { types } from "mediasoup"
import { ProducerId, type TransportId } from "../../schemas/ids.ts"

/** One RTP stream a producer receives (one per SSRC: a simulcast producer has one per layer). Plain numbers read from mediasoup. */
export interface RtpStreamStats {
  readonly ssrc: number
  readonly mimeType: string
  readonly clockRate: number
  /** Packets received (retransmissions included) since the stream began. */
  readonly packetCount: number
  /** Packets lost since the stream began; mediasoup updates it with each RTCP receiver report it sends (every 1-5 s). */
  readonly packetsLost: number
  /** The loss of the last receiver report's interval, 0-1 (mediasoup's 0-255 over 256). */
  readonly fractionLost: number
  /** Interarrival jitter (RFC 3550), converted from RTP timestamp units with the codec's clock rate. */
  readonly jitterMs: number
  /** Over mediasoup's last second. */
  readonly bitrateBps: number
  /** Only when the sender sends RTCP XR receiver reference times (mediasoup answers with DLRR); null otherwise. */
  readonly roundTripTimeMs: number | null
  /** mediasoup's stream score, 0-10. */
  readonly score: number
}

export interface ProducerStats {
  readonly id: ProducerId
  readonly kind: "audio" | "video"
  readonly transportId: TransportId
  readonly paused: boolean
  readonly streams: ReadonlyArray<RtpStreamStats>
}

/** One client transport (WebRTC or plain). mediasoup's transport stats carry no round-trip time: the only RTT is a producer stream's. */
export interface TransportStats {
  readonly id: TransportId
  readonly kind: "webrtc" | "plain"
  readonly bytesReceived: number
  readonly recvBitrateBps: number
  readonly rtpRecvBitrateBps: number
  readonly sendBitrateBps: number
  /** transport-cc's loss of received RTP, 0-1, when the sender uses transport-cc; null otherwise. */
  readonly rtpPacketLossReceived: number | null
}

/** What mediasoup measures of one session's media on this instance. */
export interface SessionStats {
  readonly producers: ReadonlyArray<ProducerStats>
  readonly transports: ReadonlyArray<TransportStats>
}

/** RTP clock rates when the producer's parameters do not name the stream's codec (they always should). */
const defaultClockRate = { audio: 48_000, video: 90_000 } as const

const clockRateOf = (producer: types.Producer, mimeType: string): number =>
  producer.rtpParameters.codecs.find((c) => c.mimeType.toLowerCase() === mimeType.toLowerCase())?.clockRate ?? defaultClockRate[producer.kind]

export const producerStats = (producer: types.Producer, transportId: TransportId, stats: ReadonlyArray<types.ProducerStat>): ProducerStats => ({
  id: ProducerId.make(producer.id),
  kind: producer.kind,
  transportId,
  paused: producer.paused,
  streams: stats.map((s) => {
    const clockRate = clockRateOf(producer, s.mimeType)
    return {
      ssrc: s.ssrc,
      mimeType: s.mimeType,
      clockRate,
      packetCount: s.packetCount,
      packetsLost: s.packetsLost,
      fractionLost: s.fractionLost / 256,
      jitterMs: (s.jitter / clockRate) * 1000,
      bitrateBps: s.bitrate,
      // mediasoup sends 0 when it has no round trip.
      roundTripTimeMs: s.roundTripTime === undefined || s.roundTripTime <= 0 ? null : s.roundTripTime,
      score: s.score
    }
  })
})

export const transportStats = (id: TransportId, kind: "webrtc" | "plain", stats: ReadonlyArray<types.BaseTransportStats>): TransportStats => {
  const s = stats[0]
  return {
    id,
    kind,
    bytesReceived: s?.bytesReceived ?? 0,
    recvBitrateBps: s?.recvBitrate ?? 0,
    rtpRecvBitrateBps: s?.rtpRecvBitrate ?? 0,
    sendBitrateBps: s?.sendBitrate ?? 0,
    rtpPacketLossReceived: s?.rtpPacketLossReceived ?? null
  }
}
