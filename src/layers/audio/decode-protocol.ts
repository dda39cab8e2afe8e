import type { OpusRtpDecoded, OpusRtpDecoderOptions, RtpRejected } from "../../media/opus.ts"

/**
 * Messages between the main thread and an Opus decode thread (`decode-worker.ts`). One message
 * each way per batch: every packet queued for a thread within one synchronous run (a burst of
 * mediasoup events) travels together, with the packet bytes packed into one transferred buffer.
 */

/** Per packet in {@link DecodeBatch.packets}: stream id, byte offset, byte length, arrival (ms since epoch), receipt (main thread's monotonic ms). */
export const PACKET_FIELDS = 5

/** Main -> thread. Applied in this order: `open`, then `packets`, then `close`. */
export interface DecodeBatch {
  readonly open: ReadonlyArray<{ readonly stream: number; readonly options: OpusRtpDecoderOptions }>
  readonly packets: Float64Array
  readonly bytes: ArrayBuffer
  readonly close: ReadonlyArray<number>
}

/** One packet's outcome, in the order the packets were sent (per stream). */
export type DecodeOutcome =
  | { readonly stream: number; readonly receivedAt: number; readonly decoded: OpusRtpDecoded }
  | { readonly stream: number; readonly receivedAt: number; readonly rejected: RtpRejected }

/** Thread -> main: the outcomes of one batch (sample buffers transferred), then the streams it closed. */
export interface DecodeResults {
  readonly outcomes: ReadonlyArray<DecodeOutcome>
  readonly closed: ReadonlyArray<number>
}
