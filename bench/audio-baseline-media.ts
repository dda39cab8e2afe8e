// The media side of bench/audio-ingest's baseline server: mediasoup workers started as the service
// starts them (its media settings, codecs, listen info and WebRtcServer per worker), one router per
// session on the least-loaded worker, and every audio producer consumed server-side as the service
// does it (a DirectTransport consumer's `rtp` events into the service's OpusRtpDecoder on the main
// thread; a DirectTransport data consumer's `message` events through its PCM chunk parser), with
// nothing else around it: each chunk's sequence goes to `received`.
import { type Effect, Result } from "effect"
import type { types } from "mediasoup"
import { randomUUID } from "node:crypto"
import type { media } from "../src/config/media.ts"
import { OpusRtpDecoder } from "../src/layers/audio/opus-rtp-decoder.ts"
import { routerCodecs } from "../src/layers/media/codecs.ts"
import { plainListenInfo, type PortRange, splitPorts, webRtcServerOptions, webRtcTransportOptions } from "../src/layers/media/listen.ts"
import { useBundledMediaWorker } from "../src/layers/media/workerEnv.ts"
import { RTP_CONCEALMENT_MS } from "../src/programs/audio/pipeline.ts"
import { parseChunk } from "../src/programs/audio/pcm.ts"
import type { AudioPath } from "../src/schemas/audio.ts"
import type { ConnectTransport, CreatePlainTransport, Produce, ProduceData } from "../src/schemas/webrtc.ts"

export type MediaSettings = Effect.Success<typeof media>

interface Slot {
  readonly index: number
  readonly ports: PortRange
  readonly worker: types.Worker
  readonly server: types.WebRtcServer | undefined
  routers: number
}

interface Session {
  readonly router: types.Router
  readonly slot: Slot
  readonly transports: Map<string, types.WebRtcTransport | types.PlainTransport>
}

export type BaselineMedia = Awaited<ReturnType<typeof startBaselineMedia>>

/** Where a producer's chunks go: `chunk` is told each one (opened when its consumer is made, ended when it closes). */
export interface ChunkSink {
  readonly chunk: (sequence: number, captureTimeMs: number, pcm: Uint8Array) => void
  readonly end: () => void
}

/** Starts the workers; `open` makes the sink of each producer's chunks. */
export const startBaselineMedia = async (config: MediaSettings, open: (sessionId: string, producerId: string, path: AudioPath) => ChunkSink) => {
  const workerBin = useBundledMediaWorker()
  const mediasoup = await import("mediasoup")
  const slots: Array<Slot> = []
  for (const [index, ports] of splitPorts(config.rtcMinPort, config.rtcMaxPort, config.workers).entries()) {
    const worker = await mediasoup.createWorker({ workerBin, logLevel: config.logLevel })
    const server = config.webRtcServer ? await worker.createWebRtcServer(webRtcServerOptions(config, index, ports)) : undefined
    slots.push({ index, ports, worker, server, routers: 0 })
  }
  const sessions = new Map<string, Session>()

  const session = (id: string): Session => {
    const found = sessions.get(id)
    if (found === undefined) throw new Error(`no session ${id}`)
    return found
  }
  const transport = (id: string, transportId: string) => {
    const found = session(id).transports.get(transportId)
    if (found === undefined) throw new Error(`no transport ${transportId}`)
    return found
  }

  /** Opus RTP of `producer` into the decoder, per packet on the main thread (the service's AUDIO_DECODE_THREADS=0 default). */
  const consumeRtp = async (id: string, producer: types.Producer) => {
    const { router } = session(id)
    const direct = await router.createDirectTransport()
    const consumer = await direct.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities })
    const decoder = await OpusRtpDecoder.make({ concealMs: RTP_CONCEALMENT_MS, payloadType: consumer.rtpParameters.codecs[0]?.payloadType ?? 100 })
    const sink = open(id, producer.id, "rtp")
    consumer.on("rtp", (packet) => {
      const decoded = decoder.decode(packet)
      if (Result.isFailure(decoded)) return
      for (const c of decoded.success.concealed) sink.chunk(c.sequence, c.captureTimeMs, c.pcm)
      const c = decoded.success.chunk
      if (c !== undefined) sink.chunk(c.sequence, c.captureTimeMs, c.pcm)
    })
    consumer.observer.once("close", () => {
      decoder.free()
      sink.end()
    })
  }

  /** PCM chunks of `dataProducer`, each validated by the service's parser. */
  const consumePcm = async (id: string, dataProducer: types.DataProducer) => {
    const direct = await session(id).router.createDirectTransport()
    const dataConsumer = await direct.consumeData({ dataProducerId: dataProducer.id })
    const sink = open(id, dataProducer.id, "datachannel")
    dataConsumer.on("message", (message) => {
      const parsed = parseChunk(message)
      if (Result.isSuccess(parsed)) sink.chunk(parsed.success.sequence, parsed.success.captureTimeMs, parsed.success.pcm)
    })
    dataConsumer.observer.once("close", sink.end)
  }

  return {
    createSession: async (): Promise<{ id: string }> => {
      const slot = slots.reduce((best, s) => (s.routers < best.routers ? s : best))
      slot.routers++
      const router = await slot.worker.createRouter({ mediaCodecs: routerCodecs() })
      const id = randomUUID()
      sessions.set(id, { router, slot, transports: new Map() })
      return { id }
    },
    createPlainTransport: async (id: string, request: CreatePlainTransport) => {
      const { router, slot, transports } = session(id)
      const plain = await router.createPlainTransport({
        listenInfo: plainListenInfo(config, slot.ports),
        rtcpMux: request.rtcpMux ?? true,
        comedia: true,
        enableSrtp: false
      })
      transports.set(plain.id, plain)
      return {
        id: plain.id,
        ip: plain.tuple.localAddress,
        port: plain.tuple.localPort,
        ...(plain.rtcpTuple === undefined ? {} : { rtcpPort: plain.rtcpTuple.localPort })
      }
    },
    createWebRtcTransport: async (id: string) => {
      const { router, slot, transports } = session(id)
      const webRtc = await router.createWebRtcTransport(webRtcTransportOptions(config, slot.server, slot.ports))
      transports.set(webRtc.id, webRtc)
      const { iceParameters, iceCandidates, dtlsParameters, sctpParameters } = webRtc
      return { id: webRtc.id, iceParameters, iceCandidates, dtlsParameters, sctpParameters }
    },
    connect: async (id: string, transportId: string, request: typeof ConnectTransport.Type) => {
      const found = transport(id, transportId)
      if (!("iceParameters" in found)) throw new Error(`transport ${transportId} is not a WebRTC transport`)
      await found.connect({ dtlsParameters: request.dtlsParameters })
    },
    produce: async (id: string, transportId: string, request: Produce) => {
      const producer = await transport(id, transportId).produce({ kind: request.kind, rtpParameters: request.rtpParameters })
      await consumeRtp(id, producer)
      return { producerId: producer.id }
    },
    produceData: async (id: string, transportId: string, request: ProduceData) => {
      const dataProducer = await transport(id, transportId).produceData({
        sctpStreamParameters: request.sctpStreamParameters,
        ...(request.label === undefined ? {} : { label: request.label }),
        ...(request.protocol === undefined ? {} : { protocol: request.protocol })
      })
      await consumePcm(id, dataProducer)
      return { dataProducerId: dataProducer.id }
    },
    close: () => {
      for (const slot of slots) slot.worker.close()
    }
  }
}
