/**
 * Wrap-aware sequence numbers: the one tracker of the audio paths (PCM chunks: 32-bit, Opus RTP:
 * 16-bit) and the signed 16-bit distance that RTP reordering, jitter buffering and frame assembly use.
 */

/** Signed distance `from` -> `to` in 16-bit sequence space (-32768..32767; RFC 3550 A.1 arithmetic). */
export const seqDelta16 = (from: number, to: number): number => (((to - from) & 0xffff) << 16) >> 16

/** The extended number of the 16-bit `sequence16` nearest to the extended `reference` (RFC 3550 A.1). */
export const extendSequence16 = (reference: number, sequence16: number): number => reference + seqDelta16(reference & 0xffff, sequence16)

/** What {@link SequenceTracker.track} made of one sequence number. */
export type SequenceVerdict =
  /** The first chunk of the session, or the expected next one. */
  | { readonly _tag: "InOrder" }
  /** Ahead of the expected one: `lost` chunks are missing before it (counted as loss). */
  | { readonly _tag: "Gap"; readonly lost: number }
  /** Seen already (within the recent window, or the newest itself): drop it. */
  | { readonly _tag: "Duplicate" }
  /** Older than the newest seen and not seen before (was counted as lost): drop it. */
  | { readonly _tag: "Late" }

const IN_ORDER: SequenceVerdict = { _tag: "InOrder" }
const DUPLICATE: SequenceVerdict = { _tag: "Duplicate" }
const LATE: SequenceVerdict = { _tag: "Late" }

/** Window of recent sequence numbers remembered to tell duplicates from late arrivals (two 32-bit words: 64 at most). */
const WINDOW = 64

/** A jump ahead larger than this is a restart of the sender's counter, not loss (RFC 3550 A.1's MAX_DROPOUT). */
const MAX_DROPOUT = 3000

/**
 * Per-session sequence bookkeeping with modular arithmetic (wraps at `2^bits`, default 32):
 * gaps are loss, repeats are duplicates, older unseen numbers are late (out of order). Loss is
 * counted when the gap is seen; a late chunk that fills it later does not uncount it.
 * A jump of half the sequence space or more is treated as "behind" (late), as in RFC 3550; a jump
 * ahead of more than MAX_DROPOUT resynchronises on the new number without counting loss.
 */
export class SequenceTracker {
  private readonly modulus: number
  private readonly half: number
  private newest: number | undefined = undefined
  /** Extended (mod 2^32) number of `newest`: `newest` plus 2^bits per wrap. */
  private extendedNewest = 0
  /** Bit i set: newest - i was seen (i < WINDOW; bits 0-31 in `seenLow`, 32-63 in `seenHigh`; numbers, not a BigInt: this runs per packet). */
  private seenLow = 0
  private seenHigh = 0
  received = 0
  lost = 0
  duplicates = 0
  late = 0

  constructor(bits = 32) {
    this.modulus = 2 ** bits
    this.half = this.modulus / 2
  }

  /** The extended (mod 2^32) number of the newest accepted sequence (`InOrder` or `Gap`): wraps of a 16-bit counter unrolled. */
  get extended(): number {
    return this.extendedNewest
  }

  /** Classifies and records one sequence number. */
  track(sequence: number): SequenceVerdict {
    if (this.newest === undefined) {
      this.newest = sequence
      this.extendedNewest = sequence
      this.seenLow = 1
      this.seenHigh = 0
      this.received++
      return IN_ORDER
    }
    const ahead = (sequence - this.newest + this.modulus) % this.modulus
    if (ahead === 0) {
      this.duplicates++
      return DUPLICATE
    }
    if (ahead < this.half) {
      this.newest = sequence
      this.extendedNewest = (this.extendedNewest + ahead) % 2 ** 32
      this.shiftSeen(ahead)
      this.received++
      if (ahead === 1 || ahead > MAX_DROPOUT) return IN_ORDER
      this.lost += ahead - 1
      return { _tag: "Gap", lost: ahead - 1 }
    }
    const behind = this.modulus - ahead
    if (behind < WINDOW) {
      if (this.wasSeen(behind)) {
        this.duplicates++
        return DUPLICATE
      }
      this.markSeen(behind)
    }
    this.late++
    return LATE
  }

  /** The window moves `ahead` numbers on; the new newest is seen. */
  private shiftSeen(ahead: number): void {
    if (ahead >= WINDOW) {
      this.seenHigh = 0
      this.seenLow = 1
    } else if (ahead >= 32) {
      this.seenHigh = (this.seenLow << (ahead - 32)) >>> 0
      this.seenLow = 1
    } else {
      this.seenHigh = ((this.seenHigh << ahead) | (this.seenLow >>> (32 - ahead))) >>> 0
      this.seenLow = ((this.seenLow << ahead) | 1) >>> 0
    }
  }

  private wasSeen(behind: number): boolean {
    return behind < 32 ? ((this.seenLow >>> behind) & 1) === 1 : ((this.seenHigh >>> (behind - 32)) & 1) === 1
  }

  private markSeen(behind: number): void {
    if (behind < 32) this.seenLow = (this.seenLow | (1 << behind)) >>> 0
    else this.seenHigh = (this.seenHigh | (1 << (behind - 32))) >>> 0
  }
}
