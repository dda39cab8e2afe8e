import { Result } from "effect"
import type { AicMode } from "../../config/settings.ts"
import {
  AIC_FLAG_FALLBACK,
  AIC_FLAG_KEY_FRAME,
  AIC_FLAG_PAYLOAD_REPLACED,
  AIC_QUALITY_MAX,
  AIC_RATIO_SCALE,
  encodeAicMetadata,
  modelTypeHash,
  qualityToFixed,
  ratioToFixed
} from "../../media/aic-element.ts"
import type { FrameResult } from "../../schemas/aicore.ts"
import { type PacketAllocator, type RtpPacket, setExtension, withPayload } from "../../media/rtp.ts"

/** What the pipeline writes on a frame's packets. */
export interface FrameVerdict {
  /** The 16-byte AIC element data. */
  readonly element: Uint8Array
  /** Per packet, the payload to forward instead of the original (`replace` mode), else undefined. */
  readonly payloads: ReadonlyArray<Uint8Array> | undefined
  /** The AI Core made the frame smaller, and its size (the sum of the returned payloads). */
  readonly compressed: boolean
  readonly compressedBytes: number
}

const element = (ratio: number, quality: number, hash: number, flags: number): Uint8Array => {
  const encoded = encodeAicMetadata({ version: 1, compressionRatio: ratio, qualityScore: quality, modelTypeHash: hash, flags })
  // Every field is built in range here, so encoding cannot fail; a failure would be a bug.
  if (Result.isFailure(encoded)) throw new Error(`AIC metadata: ${encoded.failure.detail}`)
  return encoded.success
}

const passthrough = (key: boolean): FrameVerdict => ({
  element: element(AIC_RATIO_SCALE, AIC_QUALITY_MAX, 0, AIC_FLAG_FALLBACK | (key ? AIC_FLAG_KEY_FRAME : 0)),
  payloads: undefined,
  compressed: false,
  compressedBytes: 0
})
// Built once: every fallback frame carries one of these two (the bytes are copied into each packet).
const PASSTHROUGH_KEY = passthrough(true)
const PASSTHROUGH_DELTA = passthrough(false)

/** The element of a frame forwarded unchanged: ratio 1.0, quality 1.0, no model, the fallback flag. */
export const fallbackVerdict = (key: boolean): FrameVerdict => key ? PASSTHROUGH_KEY : PASSTHROUGH_DELTA

/** Elements one pipeline has written, per model: consecutive frames mostly repeat one. */
const CACHED_ELEMENTS = 4096

/** One pipeline's AIC elements by value, and its model names hashed once each. */
export class ElementCache {
  private readonly models = new Map<string, { readonly hash: number; readonly elements: Map<number, Uint8Array> }>()
  element(ratio: number, quality: number, modelType: string, flags: number): Uint8Array {
    let model = this.models.get(modelType)
    if (model === undefined) {
      model = { hash: modelType === "" ? 0 : modelTypeHash(modelType), elements: new Map() }
      this.models.set(modelType, model)
    }
    // ratio < 2^16, quality < 2^14, flags < 2^8: one exact number key.
    const key = (ratio * 16_384 + quality) * 256 + flags
    let data = model.elements.get(key)
    if (data === undefined) {
      if (model.elements.size >= CACHED_ELEMENTS) model.elements.clear()
      data = element(ratio, quality, model.hash, flags)
      model.elements.set(key, data)
    }
    return data
  }
}

/**
 * The element for a frame the AI Core answered. The ratio and sizes come from the payloads
 * actually returned (not the reported numbers), so what the metadata says is what was measured.
 * In `replace` mode a smaller result replaces the payloads; a result that is not smaller is
 * never forwarded (it would only grow the packets).
 */
export const answeredVerdict = (result: FrameResult, originalBytes: number, key: boolean, mode: AicMode, cache: ElementCache): FrameVerdict => {
  let compressedBytes = 0
  for (const p of result.payload) compressedBytes += p.byteLength
  const compressed = compressedBytes < originalBytes
  const replace = mode === "replace" && compressed
  const flags = (replace ? AIC_FLAG_PAYLOAD_REPLACED : 0) | (key ? AIC_FLAG_KEY_FRAME : 0)
  return {
    element: cache.element(ratioToFixed(compressedBytes, originalBytes), qualityToFixed(result.qualityScore), result.modelType, flags),
    payloads: replace ? result.payload : undefined,
    compressed,
    compressedBytes
  }
}

/**
 * The packet with the AIC element `id` added (other elements byte-identical) and, when given,
 * its payload replaced. A packet whose header extension cannot take the element (a non-RFC 8285
 * profile, a full block) goes out as it came: media is never dropped for metadata.
 */
export const writePacket = (packet: RtpPacket, id: number, verdict: FrameVerdict, index: number, alloc: PacketAllocator): Uint8Array => {
  const payload = verdict.payloads?.[index]
  const base: Uint8Array | RtpPacket = payload === undefined ? packet : withPayload(packet, payload, alloc)
  const written = setExtension(base, id, verdict.element, alloc)
  return Result.isSuccess(written) ? written.success : base instanceof Uint8Array ? base : packet.bytes
}
