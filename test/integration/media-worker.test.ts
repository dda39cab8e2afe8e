import { describe, expect, it } from "vitest"
import { useBundledMediaWorker } from "../../src/layers/media/workerEnv.ts"

describe("mediasoup worker (installed by npm ci)", () => {
  it("creates a worker, a router and a WebRtcTransport with SCTP, then closes them", async () => {
    useBundledMediaWorker()
    const mediasoup = await import("mediasoup")
    const worker = await mediasoup.createWorker({ rtcMinPort: 40000, rtcMaxPort: 40100, logLevel: "warn" })
    try {
      const router = await worker.createRouter({
        mediaCodecs: [{ kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 }]
      })
      const transport = await router.createWebRtcTransport({
        listenIps: [{ ip: "127.0.0.1" }],
        enableUdp: true,
        enableSctp: true,
        numSctpStreams: { OS: 1024, MIS: 1024 }
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
