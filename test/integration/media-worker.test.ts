import { describe, expect, it } from "vitest"
import { useBundledMediaWorker } from "../../src/layers/media/workerEnv.ts"

describe("mediasoup worker (installed by npm ci)", () => {
  it("creates a worker, a router and a WebRtcTransport with SCTP, then closes them", async () => {
    useBundledMediaWorker()
    const mediasoup = await import("mediasoup")
    const worker = await mediasoup.createWorker({ logLevel: "warn" })
    try {
      const router = await worker.createRouter({
        mediaCodecs: [{ kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 }]
      })
      const transport = await router.createWebRtcTransport({
        listenInfos: [{ protocol: "udp", ip: "127.0.0.1", portRange: { min: 40000, max: 40100 } }],
        enableSctp: true
      })
      expect(transport.sctpParameters?.port).toBe(5000)
      expect(transport.iceCandidates.length).toBeGreaterThan(0)
      expect(router.rtpCapabilities.codecs?.some((c) => c.mimeType === "audio/opus")).toBe(true)
      expect((await worker.dump()).routerIds).toEqual([router.id])

      transport.close()
      router.close()
      expect(transport.closed).toBe(true)
      expect((await worker.dump()).routerIds).toEqual([])
    } finally {
      worker.close()
    }
    expect(worker.closed).toBe(true)
  })
})
