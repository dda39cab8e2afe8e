import { Result } from "effect"
import type { AicMetrics } from "../../layers/aicore/metrics.ts"
import { classifyPayload, type PacketClass } from "../../media/classify.ts"
import { type AssembledFrame, FrameAssembler } from "../../media/frames.ts"
import { parseRtp, type RtpPacket, type RtpParseError } from "../../media/rtp.ts"
import type { AiCoreFrame, VideoCodec } from "../../schemas/aicore.ts"
import { NetworkEstimator } from "./network.ts"

/** RTP clock rate of every video codec here (RFC 6184, 7798, 7741, 9628). */
const VIDEO_CLOCK_RATE = 90_000

/**
 * A frame still being collected this long after its first packet goes on as it is: its tail was
 * lost and no later frame came to close it (the source paused or stopped). Longer than a sender's
 * pacing spreads one frame (a frame interval or two), so complete frames never hit it.
 */
export const FRAME_HOLD_MS = 100

/** A frame ready for the AI Core, and the packets of its SSRC that came while it was being collected. */
export interface FrameUnit {
  readonly frame: AssembledFrame<RtpPacket>
  /** The AI Core request (payload views, RTP metadata, network conditions when the frame closed). */
  readonly request: AiCoreFrame
  readonly originalBytes: number
  /** Forwarded right after the frame, as they came: other payload types, late or duplicate packets. */
  readonly after: ReadonlyArray<Uint8Array>
}

/** What leaves the synchronous step, in output order: a frame, or a packet forwarded as it came. */
export type Unit = FrameUnit | Uint8Array

export interface LaneCounters {
  malformed: number
  frames: number
  payloadRejects: number
  unframed: number
  lastParseError: RtpParseError | undefined
}

/** One SSRC: its network measurements, and what waits for the frame it is collecting. */
interface Lane {
  readonly network: NetworkEstimator
  /** When the frame being collected got its first packet (undefined: none is). */
  collectingSince: number | undefined
  /** Packets forwarded as they came while a frame was being collected: they follow that frame. */
  held: Array<Uint8Array>
}

const unclassified = (codec: VideoCodec): PacketClass => ({ codec, start: false, key: false, nalTypes: [] })

/**
 * The synchronous part of the AIC stream, one chunk of packets at a time: parse, classify,
 * assemble frames per SSRC and measure the network. Packets of one SSRC leave in the order they
 * came: a packet that is not part of a frame (another payload type, late, duplicate) while a frame
 * is being collected waits behind that frame. Malformed packets are counted by reason and dropped.
 * No Effect, no allocation beyond the units it returns.
 */
export class Lanes {
  readonly counters: LaneCounters = { malformed: 0, frames: 0, payloadRejects: 0, unframed: 0, lastParseError: undefined }
  private readonly assembler = new FrameAssembler<RtpPacket>()
  private readonly lanes = new Map<number, Lane>()
  private readonly codecs: ReadonlyMap<number, VideoCodec>
  private readonly metrics: AicMetrics["Service"]

  constructor(codecs: ReadonlyMap<number, VideoCodec>, metrics: AicMetrics["Service"]) {
    this.codecs = codecs
    this.metrics = metrics
  }

  /** Whether some SSRC is collecting a frame (only then can `release` have anything to do). */
  collecting(): boolean {
    for (const lane of this.lanes.values()) if (lane.collectingSince !== undefined) return true
    return false
  }

  /** Frames collected for longer than FRAME_HOLD_MS go on incomplete. */
  release(now: number, out: Array<Unit>): void {
    for (const [ssrc, lane] of this.lanes) {
      if (lane.collectingSince !== undefined && now - lane.collectingSince >= FRAME_HOLD_MS) {
        this.frames(lane, this.assembler.flush(ssrc), out)
        this.releaseHeld(lane, out)
      }
    }
  }

  /** The source ended: every frame still being collected goes on as it is. */
  end(out: Array<Unit>): void {
    for (const frame of this.assembler.flush()) {
      const lane = this.lanes.get(frame.ssrc)
      if (lane !== undefined) this.frames(lane, [frame], out)
    }
    for (const lane of this.lanes.values()) this.releaseHeld(lane, out)
  }

  private laneOf(ssrc: number): Lane {
    let lane = this.lanes.get(ssrc)
    if (lane === undefined) {
      lane = { network: new NetworkEstimator(VIDEO_CLOCK_RATE), collectingSince: undefined, held: [] }
      this.lanes.set(ssrc, lane)
    }
    return lane
  }

  /** One packet, arrived at `now`: appends the units it completes to `out`, in order. */
  push(bytes: Uint8Array, now: number, out: Array<Unit>): void {
    const parsed = parseRtp(bytes)
    if (Result.isFailure(parsed)) {
      this.counters.malformed++
      this.counters.lastParseError = parsed.failure
      this.metrics.dropped(parsed.failure.reason)
      return
    }
    const packet = parsed.success
    const lane = this.laneOf(packet.ssrc)
    lane.network.packet(bytes.byteLength, packet.timestamp, now)
    const codec = this.codecs.get(packet.payloadType)
    if (codec === undefined) return this.unframed(lane, bytes, out)
    const classified = classifyPayload(codec, packet.payload)
    let cls: PacketClass
    if (Result.isSuccess(classified)) {
      cls = classified.success
    } else {
      this.counters.payloadRejects++
      this.metrics.payloadRejected()
      cls = unclassified(codec)
    }
    this.frames(lane, this.assembler.push(packet, cls), out)
    if (this.assembler.lastDropped !== undefined) this.unframed(lane, bytes, out)
    else if (!packet.marker && lane.collectingSince === undefined) lane.collectingSince = now
  }

  /** A packet forwarded as it came: now, or behind the frame its SSRC is collecting. */
  private unframed(lane: Lane, bytes: Uint8Array, out: Array<Unit>): void {
    this.counters.unframed++
    if (lane.collectingSince === undefined) out.push(bytes)
    else lane.held.push(bytes)
  }

  private releaseHeld(lane: Lane, out: Array<Unit>): void {
    lane.collectingSince = undefined
    for (const bytes of lane.held) out.push(bytes)
    lane.held = []
  }

  /** Frames the assembler closed (the first is the one being collected, if any): each becomes a unit. */
  private frames(lane: Lane, frames: ReadonlyArray<AssembledFrame<RtpPacket>>, out: Array<Unit>): void {
    for (const frame of frames) {
      const first = frame.packets[0]!
      const codec = this.codecs.get(first.payloadType)
      if (codec === undefined) continue
      lane.network.loss(frame.lost + frame.gapBefore)
      const packets = frame.packets
      const payload = new Array<Uint8Array>(packets.length)
      let originalBytes = 0
      for (let i = 0; i < packets.length; i++) {
        payload[i] = packets[i]!.payload
        originalBytes += packets[i]!.payload.byteLength
      }
      this.counters.frames++
      this.metrics.frame(originalBytes)
      const after = lane.held
      lane.held = []
      lane.collectingSince = undefined
      out.push({
        frame,
        originalBytes,
        after,
        request: {
          key: frame.key,
          codec,
          payload,
          metadata: {
            ssrc: frame.ssrc,
            payloadType: first.payloadType,
            rtpTimestamp: frame.timestamp,
            firstSequence: frame.firstSeq,
            lastSequence: frame.lastSeq,
            packetCount: packets.length,
            lostPackets: frame.lost,
            complete: frame.complete
          },
          network: lane.network.snapshot()
        }
      })
    }
  }
}
