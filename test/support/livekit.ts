import { Context, Layer } from "effect"
import { FakeLiveKit } from "./fake-livekit.ts"
import { startedFake } from "./fake-server.ts"

/** The fake LiveKit a test file runs (one per file), as a service its tests read. */
export class Fake extends Context.Service<Fake, FakeLiveKit>()("test/FakeLiveKit") {}

/** Starts a fake LiveKit with this key pair for the layer's life. */
export const fakeLiveKitLayer = (apiKey: string, apiSecret: string) =>
  Layer.effect(
    Fake,
    startedFake(() => new FakeLiveKit({ apiKey, apiSecret }))
  )

/** The service's settings pointing at `fake` with this key pair. */
export const liveKitEnv = (fake: FakeLiveKit, apiKey: string, apiSecret: string) => ({
  WEBRTC_SERVER_URL: fake.url,
  WEBRTC_API_KEY: apiKey,
  WEBRTC_API_SECRET: apiSecret
})

/** The seed's example capabilities and QoS report (MOS by the E-model: 4.13). */
export const SEED_CAPABILITIES = {
  videoCodecs: ["H.264", "VP8", "VP9"],
  audioCodecs: ["Opus", "G.722"],
  maxResolution: "1080p",
  maxFrameRate: 30,
  maxBitrate: 2500,
  supportsAic: true,
  supportsSimulcast: true
}
export const SEED_QOS = { packetLossPercent: 2.5, jitterMs: 15, rttMs: 45, bandwidthKbps: 2000 }
