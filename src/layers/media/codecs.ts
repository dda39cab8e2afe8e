import type { types } from "mediasoup"

/**
 * The router's codecs: Opus for the audio path, and the video codecs the compression pipeline
 * needs. mediasoup 3.8.4's supported capabilities include H.265 (`video/H265`), and a router
 * built with it is accepted (checked in test/integration/media-server.test.ts).
 */
export const routerCodecs = (): Array<types.RtpCodecCapability> => [
  { kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 },
  { kind: "video", mimeType: "video/VP8", clockRate: 90000, parameters: { "x-google-start-bitrate": 1000 } },
  { kind: "video", mimeType: "video/VP9", clockRate: 90000, parameters: { "profile-id": 2, "x-google-start-bitrate": 1000 } },
  {
    kind: "video",
    mimeType: "video/H264",
    clockRate: 90000,
    parameters: { "packetization-mode": 1, "profile-level-id": "42e01f", "level-asymmetry-allowed": 1 }
  },
  {
    kind: "video",
    mimeType: "video/H264",
    clockRate: 90000,
    parameters: { "packetization-mode": 1, "profile-level-id": "4d0032", "level-asymmetry-allowed": 1 }
  },
  { kind: "video", mimeType: "video/H265", clockRate: 90000, parameters: { "x-google-start-bitrate": 1000 } }
]

/** Splits [min, max] into `n` contiguous, non-overlapping ranges (the first ones take the remainder). */
export const splitPorts = (min: number, max: number, n: number): ReadonlyArray<{ readonly rtcMinPort: number; readonly rtcMaxPort: number }> => {
  const size = Math.floor((max - min + 1) / n)
  const extra = (max - min + 1) % n
  const ranges: Array<{ rtcMinPort: number; rtcMaxPort: number }> = []
  let start = min
  for (let i = 0; i < n; i++) {
    const width = size + (i < extra ? 1 : 0)
    ranges.push({ rtcMinPort: start, rtcMaxPort: start + width - 1 })
    start += width
  }
  return ranges
}
