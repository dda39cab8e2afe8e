/** Network conditions of one incoming RTP stream, as sent to the AI Core with each frame. */
export interface NetworkConditions {
  readonly bitrateKbps: number
  readonly packetLossPercent: number
  readonly jitterMs: number
  /** Not measurable at the ingress (no RTCP round trip here): always 0, "unknown". */
  readonly rttMs: number
}

/** Length of the window bitrate and loss are measured over. */
const WINDOW_MS = 1000

/**
 * Cheap per-packet measurements for one SSRC: bitrate and loss over about the last second
 * (the previous complete window), and RFC 3550 (A.8) interarrival jitter. A few arithmetic
 * operations per packet; no allocation.
 */
export class NetworkEstimator {
  private readonly clockRate: number
  private windowStart = -1
  private bytes = 0
  private received = 0
  private lost = 0
  private jitter = 0
  private lastTransit: number | undefined
  private current: NetworkConditions = { bitrateKbps: 0, packetLossPercent: 0, jitterMs: 0, rttMs: 0 }

  constructor(clockRate: number) {
    this.clockRate = clockRate
  }

  /** One packet of `size` bytes with RTP timestamp `timestamp`, arrived at `nowMs` (monotonic). */
  packet(size: number, timestamp: number, nowMs: number): void {
    if (this.windowStart < 0) this.windowStart = nowMs
    else if (nowMs - this.windowStart >= WINDOW_MS) this.roll(nowMs)
    this.bytes += size
    this.received++
    // Transit in RTP clock units; only differences matter, so the 32-bit wrap is taken care of below.
    const transit = (nowMs * this.clockRate) / 1000 - timestamp
    if (this.lastTransit !== undefined) {
      let d = Math.abs(transit - this.lastTransit)
      if (d > 2 ** 31) d = Math.abs(d - 2 ** 32)
      this.jitter += (d - this.jitter) / 16
    }
    this.lastTransit = transit
  }

  /** Sequence numbers found missing (by frame assembly). */
  loss(count: number): void {
    this.lost += count
  }

  snapshot(): NetworkConditions {
    return this.current
  }

  private roll(nowMs: number): void {
    const elapsed = nowMs - this.windowStart
    const expected = this.received + this.lost
    this.current = {
      bitrateKbps: Math.round((this.bytes * 8) / elapsed),
      packetLossPercent: expected === 0 ? 0 : Math.round((this.lost / expected) * 10_000) / 100,
      jitterMs: Math.round((this.jitter / this.clockRate) * 1_000_000) / 1000,
      rttMs: 0
    }
    this.windowStart = nowMs
    this.bytes = 0
    this.received = 0
    this.lost = 0
  }
}
