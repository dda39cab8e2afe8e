import type { PacketClass } from "./classify.ts"
import { seqDelta16 } from "./sequence.ts"

/**
 * Frame assembly per SSRC: packets of one frame share an RTP timestamp and the last carries the
 * marker bit. A frame is emitted when its marker packet arrives, or when a packet with another
 * timestamp arrives first (the frame lost its tail), or on `flush`. Packets reordered within a
 * frame are put back in sequence order; a late packet of a frame already emitted is counted and
 * dropped. Pure bookkeeping: no timers, no copies of payloads.
 */

/** The RTP fields assembly needs; any parsed-RTP shape with these fields fits. */
export interface RtpFields {
  readonly ssrc: number
  readonly sequence: number
  readonly timestamp: number
  readonly marker: boolean
}

export interface AssembledFrame<P extends RtpFields = RtpFields> {
  readonly ssrc: number
  readonly timestamp: number
  readonly firstSeq: number
  readonly lastSeq: number
  /** Some packet carries key-frame data (see `PacketClass.key`). */
  readonly key: boolean
  /** The frame's packets in sequence order, duplicates removed. */
  readonly packets: ReadonlyArray<P>
  /** Sequence numbers missing between `firstSeq` and `lastSeq`. */
  readonly lost: number
  /** The marker packet arrived. */
  readonly markerSeen: boolean
  /** The first packet opens a frame (`PacketClass.start`): the frame's head was not lost. */
  readonly startSeen: boolean
  /** Sequence numbers missing between the previous frame of this SSRC and this one (0 for the first). */
  readonly gapBefore: number
  /** No loss inside the frame: no sequence gap, the marker seen, and the head packet present. */
  readonly complete: boolean
}

interface Entry<P> {
  readonly packet: P
  /** Sequence number relative to the frame's reference packet (signed, wrap-aware). */
  readonly offset: number
  readonly cls: PacketClass
}

interface Pending<P> {
  readonly timestamp: number
  readonly reference: number
  readonly entries: Array<Entry<P>>
}

interface SsrcState<P> {
  pending: Pending<P> | undefined
  lastEmittedTimestamp: number | undefined
  lastEmittedSeq: number | undefined
}

export interface AssemblerStats {
  readonly frames: number
  readonly incomplete: number
  readonly late: number
  readonly duplicates: number
}

export class FrameAssembler<P extends RtpFields = RtpFields> {
  private readonly states = new Map<number, SsrcState<P>>()
  /** Whether the last `push` discarded its packet, and why (a late packet or a duplicate). */
  lastDropped: "late" | "duplicate" | undefined = undefined
  private frames = 0
  private incomplete = 0
  private late = 0
  private duplicates = 0

  stats(): AssemblerStats {
    return { frames: this.frames, incomplete: this.incomplete, late: this.late, duplicates: this.duplicates }
  }

  /** Adds one classified packet; returns the frames it completes (0, 1 or 2). */
  push(packet: P, cls: PacketClass): Array<AssembledFrame<P>> {
    let state = this.states.get(packet.ssrc)
    if (state === undefined) {
      state = { pending: undefined, lastEmittedTimestamp: undefined, lastEmittedSeq: undefined }
      this.states.set(packet.ssrc, state)
    }
    const out: Array<AssembledFrame<P>> = []
    this.lastDropped = undefined
    const pending = state.pending
    if (pending !== undefined && pending.timestamp !== packet.timestamp) {
      out.push(this.emit(packet.ssrc, state, pending))
    } else if (
      pending === undefined && state.lastEmittedTimestamp === packet.timestamp && state.lastEmittedSeq !== undefined &&
      seqDelta16(state.lastEmittedSeq, packet.sequence) <= 0
    ) {
      this.late += 1
      this.lastDropped = "late"
      return out
    }
    let current = state.pending
    if (current === undefined) {
      current = { timestamp: packet.timestamp, reference: packet.sequence, entries: [] }
      state.pending = current
    }
    const offset = seqDelta16(current.reference, packet.sequence)
    const entries = current.entries
    let at = entries.length
    while (at > 0 && entries[at - 1]!.offset > offset) at--
    if (at > 0 && entries[at - 1]!.offset === offset) {
      this.duplicates += 1
      this.lastDropped = "duplicate"
    } else {
      entries.splice(at, 0, { packet, offset, cls })
    }
    if (packet.marker) out.push(this.emit(packet.ssrc, state, current))
    return out
  }

  /** Emits every pending frame (of one SSRC, or all), e.g. when the source ends. */
  flush(ssrc?: number): Array<AssembledFrame<P>> {
    const out: Array<AssembledFrame<P>> = []
    for (const [key, state] of this.states) {
      if (ssrc !== undefined && key !== ssrc) continue
      if (state.pending !== undefined) out.push(this.emit(key, state, state.pending))
    }
    return out
  }

  /** Forgets an SSRC (its source ended). */
  remove(ssrc: number): void {
    this.states.delete(ssrc)
  }

  private emit(ssrc: number, state: SsrcState<P>, pending: Pending<P>): AssembledFrame<P> {
    const entries = pending.entries
    const first = entries[0]!
    const last = entries[entries.length - 1]!
    const firstSeq = first.packet.sequence
    const lastSeq = last.packet.sequence
    const lost = last.offset - first.offset + 1 - entries.length
    const markerSeen = last.packet.marker
    const startSeen = first.cls.start
    const gapBefore = state.lastEmittedSeq === undefined ? 0 : Math.max(0, seqDelta16(state.lastEmittedSeq, firstSeq) - 1)
    const complete = lost === 0 && markerSeen && startSeen
    state.pending = undefined
    state.lastEmittedTimestamp = pending.timestamp
    state.lastEmittedSeq = lastSeq
    this.frames += 1
    if (!complete) this.incomplete += 1
    return {
      ssrc,
      timestamp: pending.timestamp,
      firstSeq,
      lastSeq,
      key: entries.some((e) => e.cls.key),
      packets: entries.map((e) => e.packet),
      lost,
      markerSeen,
      startSeen,
      gapBefore,
      complete
    }
  }
}
