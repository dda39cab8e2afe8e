import { extendSequence16 } from "../../media/sequence.ts"

/** Default wait for a missing packet, ms (`AUDIO_JITTER_BUFFER_MS`). */
export const DEFAULT_JITTER_BUFFER_MS = 60

/**
 * What {@link JitterBuffer.push} made of one packet:
 * - `InOrder`: the next one expected, released at once (with any held packets it unblocked);
 * - `Reordered`: older than the newest seen but still in time: put back in its place;
 * - `Held`: ahead of a hole (or the stream's first), waits for the missing packet(s) (with a window
 *   of 0 it is released at once, past the hole);
 * - `Late`: its slot was already given up as lost (dropped);
 * - `Duplicate`: seen already (dropped).
 */
export type JitterVerdict = "InOrder" | "Reordered" | "Held" | "Late" | "Duplicate"

/** Lost slots remembered to tell a late packet from a duplicate. */
const REMEMBER_LOST = 64

/**
 * A small reordering buffer for one RTP stream (one SSRC), keyed by the 16-bit RTP sequence number
 * (extended across wraps as in RFC 3550 A.1). Packets are released in sequence order; a packet
 * arriving after a hole waits until either the hole fills or the oldest waiting packet has waited
 * `windowMs`, then the hole is given up (the consumer sees a sequence gap: that is the loss). In-order
 * packets are never delayed, except at the start of a stream: the first packet waits the window too
 * (one that was sent before it may still come), and those after it wait behind it. Pure and clock-free: the caller passes the time and calls {@link poll}
 * at {@link deadline}.
 */
export class JitterBuffer<T> {
  private readonly windowMs: number
  private readonly maxHeld: number
  /** Extended sequence of the next slot to release, and of the newest packet seen. */
  private next: number | undefined = undefined
  private newest = 0
  private readonly held = new Map<number, { readonly item: T; readonly at: number }>()
  private readonly lost = new Set<number>()
  reordered = 0
  late = 0
  duplicates = 0

  /** `maxHeld`: packets held at most; one more gives up the oldest hole at once (default 256, about 5 s of 20 ms frames). */
  constructor(windowMs: number, maxHeld = 256) {
    this.windowMs = Math.max(0, windowMs)
    this.maxHeld = Math.max(1, maxHeld)
  }

  private extend(sequence16: number): number {
    return extendSequence16(this.newest, sequence16)
  }

  private drain(out: Array<T>): void {
    let entry = this.held.get(this.next!)
    while (entry !== undefined) {
      this.held.delete(this.next!)
      out.push(entry.item)
      this.next!++
      entry = this.held.get(this.next!)
    }
  }

  /** Gives up the hole at `next`: jumps to the oldest held packet and releases from there. */
  private skipHole(out: Array<T>): void {
    let first = Infinity
    for (const key of this.held.keys()) if (key < first) first = key
    if (first === Infinity) return
    for (let s = Math.max(this.next ?? first, first - REMEMBER_LOST); s < first; s++) this.lost.add(s)
    for (const s of this.lost) if (s < first - REMEMBER_LOST) this.lost.delete(s)
    this.next = first
    this.drain(out)
  }

  /** Takes one packet that arrived at `nowMs`; what is now releasable is appended to `out`, in order. */
  push(sequence16: number, nowMs: number, item: T, out: Array<T>): JitterVerdict {
    // 2^16 up front: extended numbers of packets older than the first stay positive.
    if (this.next === undefined && this.held.size === 0) this.newest = 0x10000 + sequence16
    const sequence = this.extend(sequence16)
    if (this.next !== undefined && sequence < this.next) {
      if (this.lost.delete(sequence)) {
        this.late++
        return "Late"
      }
      // Released already, or so old that nobody remembers: a repeat either way (RFC 3550: "behind").
      if (sequence >= this.next - REMEMBER_LOST) {
        this.duplicates++
        return "Duplicate"
      }
      this.late++
      return "Late"
    }
    if (this.held.has(sequence)) {
      this.duplicates++
      return "Duplicate"
    }
    const older = sequence < this.newest
    if (sequence > this.newest) this.newest = sequence
    if (older) this.reordered++
    if (sequence === this.next) {
      out.push(item)
      this.next++
      this.drain(out)
      return older ? "Reordered" : "InOrder"
    }
    this.held.set(sequence, { item, at: nowMs })
    if (this.windowMs === 0 || this.held.size > this.maxHeld) this.skipHole(out)
    return older ? "Reordered" : "Held"
  }

  /** When the oldest held packet's wait ends (then call {@link poll}); undefined when nothing is held. */
  deadline(): number | undefined {
    let oldest = Infinity
    for (const { at } of this.held.values()) if (at < oldest) oldest = at
    return oldest === Infinity ? undefined : oldest + this.windowMs
  }

  /** Gives up every hole whose wait has ended by `nowMs`; releases are appended to `out`. */
  poll(nowMs: number, out: Array<T>): void {
    for (let due = this.deadline(); due !== undefined && due <= nowMs; due = this.deadline()) this.skipHole(out)
  }

  /** Releases everything held, in order (the stream ended): remaining holes are loss. */
  flush(out: Array<T>): void {
    while (this.held.size > 0) this.skipHole(out)
  }

  /** Packets waiting now. */
  get size(): number {
    return this.held.size
  }
}
