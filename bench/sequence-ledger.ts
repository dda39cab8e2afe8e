import type { SentRange } from "./ingest-rig.ts"

/**
 * Distinct chunk sequences received per session, counted from the session's first one, as the
 * fake ASR process counts what the service sends it (mediasoup 3.19+ starts a consumer's RTP
 * sequence numbers at a random value): bench/audio-ingest's baseline server measures loss with it.
 */
export class SequenceLedger {
  private readonly bases = new Map<string, number>()
  private readonly seen = new Map<string, Set<number>>()

  add(sessionId: string, sequence: number): void {
    const base = this.bases.get(sessionId) ?? sequence
    this.bases.set(sessionId, base)
    const seen = this.seen.get(sessionId) ?? new Set<number>()
    this.seen.set(sessionId, seen)
    seen.add((sequence - base) >>> 0)
  }

  /** Distinct sequences in [from, to) per session, summed; those below `to` are forgotten (a later window starts there). */
  count(ranges: ReadonlyArray<Omit<SentRange, "path">>): number {
    let received = 0
    for (const { sessionId, from, to } of ranges) {
      const seen = this.seen.get(sessionId) ?? new Set<number>()
      for (const index of seen) {
        if (index >= from && index < to) received++
        if (index < to) seen.delete(index)
      }
    }
    return received
  }
}
