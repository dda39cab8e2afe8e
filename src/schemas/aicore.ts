import { Schema } from "effect"

/**
 * The AI Core protocol (`proto/aicore.proto`, `auralink.aicore.v1.AiCore/Compress`) as the
 * service sees it. Requests are built here and encoded by grpc-js; results are decoded with
 * {@link FrameResult} at the edge (camelCase fields, as proto-loader gives them).
 */

/** The video codecs the AIC pipeline classifies (see `src/media/classify.ts`). */
export type VideoCodec = "H264" | "H265" | "VP8" | "VP9"

export const codecEnum: Record<VideoCodec, string> = {
  H264: "CODEC_H264",
  H265: "CODEC_H265",
  VP8: "CODEC_VP8",
  VP9: "CODEC_VP9"
}

/** One frame for the AI Core (`FrameRequest` without the session id and frame number, which the client assigns). */
export interface AiCoreFrame {
  readonly key: boolean
  readonly codec: VideoCodec
  /** The RTP payloads of the frame's packets, in sequence order (views of the packets). */
  readonly payload: ReadonlyArray<Uint8Array>
  readonly metadata: {
    readonly ssrc: number
    readonly payloadType: number
    readonly rtpTimestamp: number
    readonly firstSequence: number
    readonly lastSequence: number
    readonly packetCount: number
    readonly lostPackets: number
    readonly complete: boolean
  }
  readonly network: {
    readonly bitrateKbps: number
    readonly packetLossPercent: number
    readonly jitterMs: number
    readonly rttMs: number
  }
}

/**
 * The fields of a `FrameResult` the service reads. The reported sizes and ratio are not among
 * them: the AIC element's ratio is measured on the payloads actually returned; `model_hash` and
 * `processing_time_ms` are the AI Core's own diagnostics.
 */
export const FrameResult = Schema.Struct({
  frameNumber: Schema.Int,
  success: Schema.Boolean,
  payload: Schema.Array(Schema.Uint8Array),
  qualityScore: Schema.Finite,
  modelType: Schema.String,
  error: Schema.String
})
export type FrameResult = typeof FrameResult.Type

/**
 * Why a frame passed through without the AI Core's work:
 * - `disabled`: no AI Core is configured (AI_CORE_GRPC_URL unset), or AI_CORE_ENABLE_COMPRESSION=false;
 * - `circuit_open`: the breaker is open (or its one probe is running);
 * - `overloaded`: the session already has AI_CORE_MAX_IN_FLIGHT frames awaiting results;
 * - `unavailable`: no stream to the AI Core (connecting, reconnecting, or it broke with the frame in flight);
 * - `timeout`: no result within AI_CORE_DEADLINE_MS;
 * - `error`: the AI Core answered `success: false`;
 * - `invalid_result`: the answer did not decode, or its payload count differs from the request's;
 * - `closed`: the session's client closed with the frame in flight (shutdown, session end).
 */
export const FallbackReason = Schema.Literals([
  "disabled",
  "circuit_open",
  "overloaded",
  "unavailable",
  "timeout",
  "error",
  "invalid_result",
  "closed"
])
export type FallbackReason = typeof FallbackReason.Type

/** A frame's AI Core call did not produce a usable result; the frame goes through unchanged. */
export class AiCoreFallback extends Schema.TaggedError<AiCoreFallback>()("AiCoreFallback", {
  reason: FallbackReason,
  detail: Schema.String
}) {}

/** The AI Core client could not be set up (the proto did not load). */
export class AiCoreSetupError extends Schema.TaggedError<AiCoreSetupError>()("AiCoreSetupError", {
  message: Schema.String
}) {}
