import type { types } from "mediasoup"
import { describe, expect, it } from "vitest"
import { RTCPeerConnection, RTCRtpCodecParameters, RtpHeader, RtpPacket } from "werift"
import { useBundledMediaWorker } from "../../src/layers/media/workerEnv.ts"

// A real DTLS handshake, SRTP and SCTP against the mediasoup-worker that `npm ci` installed (or
// MEDIASOUP_WORKER_BIN): werift (WebRTC in TypeScript) is the DTLS client and mediasoup the ICE-lite
// DTLS server, as with a browser. It guards what API-level tests cannot see: a worker built
// against Debian's OpenSSL that mishandled its BIO callback passed every API test and then crashed
// (SIGSEGV) on the first handshake; SRTP goes through libsrtp, SCTP through the worker's own stack.

const OPUS_PT = 111

/** Waits until `check()` holds (polled every 50 ms), failing after `ms` with `what`. */
const until = async (what: string, check: () => boolean | Promise<boolean>, ms = 10_000) => {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

describe("mediasoup-worker: a real DTLS handshake with a WebRTC peer", () => {
  it("connects DTLS, decrypts the peer's SRTP Opus and receives a data channel message over SCTP", async () => {
    useBundledMediaWorker()
    const mediasoup = await import("mediasoup")
    const worker = await mediasoup.createWorker({ logLevel: "warn" })
    let died: Error | undefined
    worker.on("died", (error) => {
      died = error
    })
    const pc = new RTCPeerConnection({
      codecs: {
        audio: [new RTCRtpCodecParameters({ mimeType: "audio/opus", clockRate: 48000, channels: 2, payloadType: OPUS_PT })],
        video: []
      }
    })
    try {
      const router = await worker.createRouter({
        mediaCodecs: [{ kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 }]
      })
      const transport = await router.createWebRtcTransport({
        listenInfos: [{ protocol: "udp", ip: "127.0.0.1" }],
        enableSctp: true
      })
      const sctp = transport.sctpParameters
      const udp = transport.iceCandidates.find((c) => c.protocol === "udp")
      const serverFingerprint = transport.dtlsParameters.fingerprints.find((f) => f.algorithm === "sha-256")
      if (sctp === undefined || udp === undefined || serverFingerprint === undefined) {
        throw new Error("transport without SCTP, a UDP candidate or a sha-256 fingerprint")
      }

      // The peer: one send-only Opus track and a negotiated data channel (SCTP stream 1).
      const transceiver = pc.addTransceiver("audio", { direction: "sendonly" })
      const channel = pc.createDataChannel("handshake", { negotiated: true, id: 1, ordered: true })
      await pc.setLocalDescription(await pc.createOffer())
      const offer = pc.localDescription?.sdp ?? ""
      const fingerprint = /a=fingerprint:sha-256 (\S+)/.exec(offer)?.[1]
      const mids = [...offer.matchAll(/^a=mid:(\S+)/gm)].map((m) => m[1] ?? "")
      const [audioMid, dataMid] = mids
      if (fingerprint === undefined || audioMid === undefined || dataMid === undefined) {
        throw new Error(`unexpected werift offer:\n${offer}`)
      }
      const ssrc = transceiver.sender.ssrc

      // mediasoup's side: the peer is the DTLS client; a producer for its Opus, a data producer for
      // its channel, and a direct-transport data consumer that sees what arrives.
      await transport.connect({ dtlsParameters: { role: "client", fingerprints: [{ algorithm: "sha-256", value: fingerprint }] } })
      const producer = await transport.produce({
        kind: "audio",
        rtpParameters: {
          mid: audioMid,
          codecs: [{ mimeType: "audio/opus", payloadType: OPUS_PT, clockRate: 48000, channels: 2 }],
          encodings: [{ ssrc }]
        }
      })
      const dataProducer = await transport.produceData({ sctpStreamParameters: { streamId: 1, ordered: true }, label: "handshake" })
      const direct = await router.createDirectTransport()
      const dataConsumer = await direct.consumeData({ dataProducerId: dataProducer.id })
      const received: Array<string> = []
      dataConsumer.on("message", (message) => received.push(message.toString("utf8")))

      // The SDP answer standing for mediasoup's transport (ICE-lite, DTLS server).
      const transportLines = [
        "c=IN IP4 127.0.0.1",
        `a=ice-ufrag:${transport.iceParameters.usernameFragment}`,
        `a=ice-pwd:${transport.iceParameters.password}`,
        `a=candidate:${udp.foundation} 1 udp ${udp.priority} ${udp.address} ${udp.port} typ host`,
        "a=end-of-candidates",
        "a=setup:passive"
      ]
      const answer = [
        "v=0",
        "o=- 1 1 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=ice-lite",
        `a=group:BUNDLE ${audioMid} ${dataMid}`,
        `a=fingerprint:sha-256 ${serverFingerprint.value}`,
        `m=audio 7 UDP/TLS/RTP/SAVPF ${OPUS_PT}`,
        ...transportLines,
        `a=mid:${audioMid}`,
        "a=recvonly",
        "a=rtcp-mux",
        `a=rtpmap:${OPUS_PT} opus/48000/2`,
        "m=application 7 UDP/DTLS/SCTP webrtc-datachannel",
        ...transportLines,
        `a=mid:${dataMid}`,
        `a=sctp-port:${sctp.port}`,
        `a=max-message-size:${sctp.maxMessageSize}`,
        ""
      ].join("\r\n")
      await pc.setRemoteDescription({ type: "answer", sdp: answer })

      await until("DTLS connected", () => transport.dtlsState === "connected" || died !== undefined)
      expect(died).toBeUndefined()
      expect(transport.dtlsState).toBe("connected")

      // SRTP: Opus packets (a 20 ms silence frame each), protected by werift, decrypted by the worker.
      const silence = Buffer.from([0xf8, 0xff, 0xfe])
      for (let i = 0; i < 25; i++) {
        const header = new RtpHeader({ payloadType: OPUS_PT, ssrc, sequenceNumber: 1000 + i, timestamp: i * 960, marker: i === 0 })
        await transceiver.sender.sendRtp(new RtpPacket(header, silence))
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      await until("the producer's RTP", async () => (await producer.getStats()).some((s) => s.byteCount > 0))
      const [stats] = await producer.getStats()
      expect(stats?.packetCount).toBeGreaterThan(0)

      // SCTP: the channel opens over the DTLS association and its message reaches the data consumer.
      await until("the data channel open", () => channel.readyState === "open")
      expect(transport.sctpState).toBe("connected")
      channel.send("hello over SCTP")
      await until("the data channel message", () => received.length > 0)
      expect(received).toEqual(["hello over SCTP"])
      expect(died).toBeUndefined()
    } finally {
      await pc.close()
      worker.close()
    }
  })
})

describe("mediasoup-worker: SRTP with every crypto suite (libsrtp)", () => {
  const suites: Array<types.SrtpCryptoSuite> = ["AEAD_AES_256_GCM", "AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"]
  it.each(suites)("%s: RTP encrypted by one plain transport is decrypted by another", async (srtpCryptoSuite) => {
    useBundledMediaWorker()
    const mediasoup = await import("mediasoup")
    const worker = await mediasoup.createWorker({ logLevel: "warn" })
    try {
      const mediaCodecs: Array<types.RouterRtpCodecCapability> = [{ kind: "audio", mimeType: "audio/opus", clockRate: 48000, channels: 2 }]
      const [sending, receiving] = [await worker.createRouter({ mediaCodecs }), await worker.createRouter({ mediaCodecs })]
      const plain = () => ({ listenInfo: { protocol: "udp" as const, ip: "127.0.0.1" }, rtcpMux: true, comedia: false, enableSrtp: true, srtpCryptoSuite })
      const [out, into] = [await sending.createPlainTransport(plain()), await receiving.createPlainTransport(plain())]
      const [outKeys, intoKeys] = [out.srtpParameters, into.srtpParameters]
      if (outKeys === undefined || intoKeys === undefined) throw new Error("plain transports without SRTP parameters")
      expect(outKeys.cryptoSuite).toBe(srtpCryptoSuite)
      await out.connect({ ip: "127.0.0.1", port: into.tuple.localPort, srtpParameters: intoKeys })
      await into.connect({ ip: "127.0.0.1", port: out.tuple.localPort, srtpParameters: outKeys })

      // Opus into the sending router (a direct transport), out through `out` (encrypted), into `into`.
      const direct = await sending.createDirectTransport()
      const source = await direct.produce({
        kind: "audio",
        rtpParameters: { codecs: [{ mimeType: "audio/opus", payloadType: OPUS_PT, clockRate: 48000, channels: 2 }], encodings: [{ ssrc: 1111 }] }
      })
      const consumer = await out.consume({ producerId: source.id, rtpCapabilities: receiving.rtpCapabilities })
      const producer = await into.produce({ kind: "audio", rtpParameters: consumer.rtpParameters })
      for (let i = 0; i < 20; i++) {
        const header = new RtpHeader({ payloadType: OPUS_PT, ssrc: 1111, sequenceNumber: 500 + i, timestamp: i * 960, marker: i === 0 })
        source.send(new RtpPacket(header, Buffer.from([0xf8, 0xff, 0xfe])).serialize())
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      await until("the receiving producer's RTP", async () => (await producer.getStats()).some((s) => s.byteCount > 0))
    } finally {
      worker.close()
    }
  })
})
