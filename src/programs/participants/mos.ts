/**
 * Mean opinion score from network measurements with the ITU-T G.107 E-model, its default values
 * for everything not measured (R0 − Is − A = 93.2).
 */

/** G.107 default: R0 − Is with every other parameter at its default, and A = 0. */
const R_DEFAULT = 93.2
/** Codec frame plus packetization, added to every one-way delay. */
const CODEC_DELAY_MS = 20
/**
 * Equipment impairment and packet-loss robustness: G.113 Appendix I values for G.711 with packet
 * loss concealment. Opus has no G.113 values; G.711 with PLC is the usual stand-in for it.
 */
const IE = 0
const BPL = 25.1
/** Random (not bursty) loss. */
const BURST_R = 1

export interface NetworkQuality {
  readonly packetLossPercent: number
  readonly jitterMs: number
  /** null: not measured; the delay is then only the jitter buffer and the codec. */
  readonly rttMs: number | null
}

/** One-way mouth-to-ear delay: half the RTT, a jitter buffer of twice the jitter, and the codec/packetization. */
export const oneWayDelayMs = (q: NetworkQuality): number => (q.rttMs ?? 0) / 2 + 2 * q.jitterMs + CODEC_DELAY_MS

/** Id, the delay impairment (G.107 simplified form: 0.024·d + 0.11·(d − 177.3)·H(d − 177.3)). */
export const delayImpairment = (d: number): number => 0.024 * d + (d > 177.3 ? 0.11 * (d - 177.3) : 0)

/** Ie,eff, the effective equipment impairment under `lossPercent` random packet loss. */
export const lossImpairment = (lossPercent: number): number => IE + (95 - IE) * lossPercent / (lossPercent / BURST_R + BPL)

/** The transmission rating factor R. */
export const rFactor = (q: NetworkQuality): number => R_DEFAULT - delayImpairment(oneWayDelayMs(q)) - lossImpairment(q.packetLossPercent)

/**
 * G.107 Annex B: R to the estimated MOS (1 below R = 0, 4.5 above R = 100). The cubic dips just
 * below 1 for 0 < R < 6.5 (to 0.99); it is held at 1 there, the floor of the scale.
 */
export const mosFromR = (r: number): number => {
  if (r < 0) return 1
  if (r > 100) return 4.5
  return Math.max(1, 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6)
}

/** The E-model's MOS for these measurements. */
export const mos = (q: NetworkQuality): number => mosFromR(rFactor(q))
