import type { types } from "mediasoup"

/**
 * The router's codecs: Opus for the audio path, and the video codecs the compression pipeline
 * classifies. mediasoup dropped H.265 in 3.16.6 (a router refuses `video/H265`), so live sessions
 * carry VP8, VP9 and H.264; the pipeline's H.265 support serves RTP fed to it directly.
 */
export const routerCodecs = (): Array<types.RouterRtpCodecCapability> => [
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
  }
]
