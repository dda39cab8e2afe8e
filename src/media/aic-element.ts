import { Data, Result } from "effect"

/**
 * The AIC RTP header extension element (RFC 8285), written on every frame the AIC pipeline
 * handled. Its local id is negotiated through the router's header extensions (or set in
 * config) for the URI {@link AIC_EXTENSION_URI}.
 *
 * ## Layout, version 1 (16 bytes, multi-byte fields big-endian)
 *
 * ```
 *  offset  size  field            type
 *  0       1     version          u8      = 1
 *  1       2     compressionRatio u16     compressed / original size, in 1/10000 units
 *  3       2     qualityScore     u16     0..10000 = 0.0000..1.0000
 *  5       4     modelTypeHash    u32     FNV-1a 32 of the model type's UTF-8 name (0: none)
 *  9       1     flags            u8      bits below; unknown bits are kept, not interpreted
 *  10      6     reserved                 0 on write, ignored on read
 * ```
 *
 * ## Fixed-point scales
 *
 * - `compressionRatio` = round(compressed / original * {@link AIC_RATIO_SCALE}); 10000 is 1.0
 *   (no gain), 2500 means the frame shrank to a quarter. The u16 range reaches 6.5535 (a
 *   "compressed" frame 6.5x larger); larger ratios saturate at {@link AIC_RATIO_MAX}.
 * - `qualityScore` = round(quality * {@link AIC_QUALITY_SCALE}) for a quality in 0..1;
 *   values above {@link AIC_QUALITY_MAX} are invalid.
 *
 * Since the element is 16 bytes, it fits the one-byte form (data length 1..16).
 */
export const AIC_EXTENSION_URI = "urn:auralink:rtp-hdrext:aic:1"
export const AIC_METADATA_VERSION = 1
export const AIC_METADATA_BYTES = 16

/** `compressionRatio` units per 1.0 (compressed size / original size). */
export const AIC_RATIO_SCALE = 10_000
/** Largest encodable `compressionRatio` (u16), i.e. 6.5535. */
export const AIC_RATIO_MAX = 0xffff
/** `qualityScore` units per 1.0. */
export const AIC_QUALITY_SCALE = 10_000
/** Largest valid `qualityScore` (quality 1.0). */
export const AIC_QUALITY_MAX = 10_000

/** Flag: the payload was replaced by the AI Core's output (`replace` mode). */
export const AIC_FLAG_PAYLOAD_REPLACED = 0x01
/** Flag: the AI Core was bypassed or failed; the original frame passed through. */
export const AIC_FLAG_FALLBACK = 0x02
/** Flag: the frame is a key frame. */
export const AIC_FLAG_KEY_FRAME = 0x04

export interface AicMetadata {
  readonly version: 1
  /** compressed / original in 1/{@link AIC_RATIO_SCALE} units (u16). */
  readonly compressionRatio: number
  /** 0..{@link AIC_QUALITY_MAX}. */
  readonly qualityScore: number
  /** u32. */
  readonly modelTypeHash: number
  /** u8. */
  readonly flags: number
}

export type AicMetadataErrorReason = "bad_length" | "bad_version" | "out_of_range"

/** Element data that cannot be encoded or decoded (`reason`), with what was wrong (`detail`). */
export class AicMetadataError extends Data.TaggedError("AicMetadataError")<{
  readonly reason: AicMetadataErrorReason
  readonly detail: string
}> {}

const fail = (reason: AicMetadataErrorReason, detail: string): Result.Result<never, AicMetadataError> => Result.fail(new AicMetadataError({ reason, detail }))

const isUint = (n: number, max: number): boolean => Number.isInteger(n) && n >= 0 && n <= max

/** compressed / original as fixed point, rounded, saturating at {@link AIC_RATIO_MAX}; 0 for an empty original. */
export const ratioToFixed = (compressedBytes: number, originalBytes: number): number =>
  originalBytes <= 0 ? 0 : Math.min(AIC_RATIO_MAX, Math.max(0, Math.round((compressedBytes / originalBytes) * AIC_RATIO_SCALE)))

export const ratioFromFixed = (fixed: number): number => fixed / AIC_RATIO_SCALE

/** A quality in 0..1 as fixed point, clamped. */
export const qualityToFixed = (quality: number): number => Math.min(AIC_QUALITY_MAX, Math.max(0, Math.round(quality * AIC_QUALITY_SCALE)))

export const qualityFromFixed = (fixed: number): number => fixed / AIC_QUALITY_SCALE

/** FNV-1a 32-bit hash of the model type's UTF-8 bytes (the `modelTypeHash` field). */
export const modelTypeHash = (modelType: string): number => {
  let hash = 0x811c9dc5
  for (const byte of new TextEncoder().encode(modelType)) {
    hash ^= byte
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}

/** Encodes the 16-byte element data; fields out of range are an `out_of_range` error. */
export const encodeAicMetadata = (m: AicMetadata): Result.Result<Uint8Array, AicMetadataError> => {
  if (m.version !== AIC_METADATA_VERSION) return fail("bad_version", `version ${m.version}, expected 1`)
  if (!isUint(m.compressionRatio, AIC_RATIO_MAX)) return fail("out_of_range", `compressionRatio ${m.compressionRatio}`)
  if (!isUint(m.qualityScore, AIC_QUALITY_MAX)) return fail("out_of_range", `qualityScore ${m.qualityScore}`)
  if (!isUint(m.modelTypeHash, 0xffffffff)) return fail("out_of_range", `modelTypeHash ${m.modelTypeHash}`)
  if (!isUint(m.flags, 0xff)) return fail("out_of_range", `flags ${m.flags}`)
  const out = new Uint8Array(AIC_METADATA_BYTES)
  const view = new DataView(out.buffer)
  view.setUint8(0, m.version)
  view.setUint16(1, m.compressionRatio)
  view.setUint16(3, m.qualityScore)
  view.setUint32(5, m.modelTypeHash)
  view.setUint8(9, m.flags)
  return Result.succeed(out)
}

/** Decodes the element data: exactly 16 bytes, version 1, quality within 0..10000. */
export const decodeAicMetadata = (data: Uint8Array): Result.Result<AicMetadata, AicMetadataError> => {
  if (data.byteLength !== AIC_METADATA_BYTES) return fail("bad_length", `${data.byteLength} bytes, expected 16`)
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength)
  const version = view.getUint8(0)
  if (version !== AIC_METADATA_VERSION) return fail("bad_version", `version ${version}, expected 1`)
  const qualityScore = view.getUint16(3)
  if (qualityScore > AIC_QUALITY_MAX) return fail("out_of_range", `qualityScore ${qualityScore}`)
  return Result.succeed({
    version: AIC_METADATA_VERSION,
    compressionRatio: view.getUint16(1),
    qualityScore,
    modelTypeHash: view.getUint32(5),
    flags: view.getUint8(9)
  })
}
