import { Schema } from "effect"
import { type RTCDataChannel, RTCPeerConnection, RTCRtpCodecParameters, type RTCRtpSender } from "werift"

// A WebRTC peer in Node (werift: DTLS, SCTP and ICE in TypeScript, from npm) that opens the PCM
// data channel of a session the way mediasoup-client does in a browser: a send transport from the
// service's signaling, the remote side (mediasoup, ICE-lite, DTLS server) described to the peer as
// an SDP answer, and a negotiated SCTP stream announced with produce-data. It lets the audio bench
// drive many data-channel sessions at once, which one headless Chromium cannot.

const Transport = Schema.Struct({
  id: Schema.String,
  iceParameters: Schema.Struct({ usernameFragment: Schema.String, password: Schema.String }),
  iceCandidates: Schema.Array(
    Schema.Struct({ foundation: Schema.String, priority: Schema.Number, ip: Schema.String, port: Schema.Number, protocol: Schema.String })
  ),
  dtlsParameters: Schema.Struct({ fingerprints: Schema.Array(Schema.Struct({ algorithm: Schema.String, value: Schema.String })) }),
  sctpParameters: Schema.Struct({ port: Schema.Number, maxMessageSize: Schema.Number })
})
const decodeTransport = Schema.decodeUnknownSync(Transport)

/** `api(method, path, body, status)`: the bench's authenticated JSON call, which checks the status. */
export type Api = (method: string, path: string, body: unknown, status: number) => Promise<unknown>

/** One m-section of the remote answer: its m= line, mid and what it adds to the transport's lines. */
interface RemoteSection {
  readonly mLine: string
  readonly mid: string
  readonly lines: ReadonlyArray<string>
}

/** The SDP answer that stands for mediasoup's side of the transport (as mediasoup-client's RemoteSdp writes it). */
const remoteAnswer = (t: typeof Transport.Type, sections: ReadonlyArray<RemoteSection>): string => {
  const udp = t.iceCandidates.find((c) => c.protocol === "udp")
  const fingerprint = t.dtlsParameters.fingerprints.find((f) => f.algorithm === "sha-256")
  if (udp === undefined || fingerprint === undefined) throw new Error("transport without a UDP candidate or a sha-256 fingerprint")
  return [
    "v=0",
    "o=- 1 1 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    "a=ice-lite",
    `a=group:BUNDLE ${sections.map((m) => m.mid).join(" ")}`,
    `a=fingerprint:${fingerprint.algorithm} ${fingerprint.value}`,
    ...sections.flatMap((m) => [
      m.mLine,
      "c=IN IP4 127.0.0.1",
      `a=mid:${m.mid}`,
      `a=ice-ufrag:${t.iceParameters.usernameFragment}`,
      `a=ice-pwd:${t.iceParameters.password}`,
      `a=candidate:${udp.foundation} 1 udp ${udp.priority} ${udp.ip} ${udp.port} typ host`,
      "a=end-of-candidates",
      "a=setup:passive", // mediasoup is the DTLS server; we connect as the client
      ...m.lines
    ]),
    ""
  ].join("\r\n")
}

/** A new WebRTC transport of the session for `pc` (its tracks/channels already added): our DTLS fingerprint (we are the client) to the service, `sections` of the offer as the answer. */
const connectTransport = async (
  api: Api,
  sessionId: string,
  pc: RTCPeerConnection,
  sections: (offer: string, transport: typeof Transport.Type) => ReadonlyArray<RemoteSection>
): Promise<string> => {
  const base = `/api/webrtc/${sessionId}`
  const transport = decodeTransport(await api("POST", `${base}/transports`, undefined, 201))
  await pc.setLocalDescription(await pc.createOffer())
  const offer = pc.localDescription?.sdp ?? ""
  const local = /a=fingerprint:(\S+) (\S+)/.exec(offer)
  if (local === null) throw new Error("no local DTLS fingerprint")
  const dtlsParameters = { role: "client", fingerprints: [{ algorithm: local[1], value: (local[2] ?? "").toUpperCase() }] }
  await api("POST", `${base}/transports/${transport.id}/connect`, { dtlsParameters }, 204)
  await pc.setRemoteDescription({ type: "answer", sdp: remoteAnswer(transport, sections(offer, transport)) })
  return transport.id
}

/** Resolves once `pc` is connected (ICE and DTLS); rejects on failure or after `timeoutMs`. */
export const untilConnected = (pc: RTCPeerConnection, timeoutMs = 10_000): Promise<void> =>
  pc.connectionState === "connected" ? Promise.resolve() : new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      subscription.unSubscribe()
      reject(new Error(`peer not connected within ${timeoutMs} ms (${pc.connectionState})`))
    }, timeoutMs)
    const subscription = pc.connectionStateChange.subscribe((state) => {
      if (state !== "connected" && state !== "failed" && state !== "closed") return
      clearTimeout(timer)
      subscription.unSubscribe()
      if (state === "connected") resolve()
      else reject(new Error(`peer connection ${state}`))
    })
  })

export interface PcmChannel {
  readonly channel: RTCDataChannel
  readonly close: () => Promise<void>
  /** The peer and the session's WebRTC transport it is connected to (more channels can be opened on them). */
  readonly pc: RTCPeerConnection
  readonly transportId: string
}

/** Opens the session's `audio-pcm` data channel (stream 1, ordered) and waits until it is open. */
export const openPcmChannel = async (api: Api, sessionId: string): Promise<PcmChannel> => {
  const pc = new RTCPeerConnection({})
  const channel = pc.createDataChannel("audio-pcm", { negotiated: true, id: 1, ordered: true, protocol: "s16le" })
  const transportId = await connectTransport(api, sessionId, pc, (_offer, t) => [{
    mLine: "m=application 7 UDP/DTLS/SCTP webrtc-datachannel",
    mid: "0",
    lines: [`a=sctp-port:${t.sctpParameters.port}`, `a=max-message-size:${t.sctpParameters.maxMessageSize}`]
  }])
  await api("POST", `/api/webrtc/${sessionId}/transports/${transportId}/produce-data`, {
    sctpStreamParameters: { streamId: 1, ordered: true },
    label: "audio-pcm",
    protocol: "s16le"
  }, 201)
  if (channel.readyState !== "open") {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("data channel not open within 10 s")), 10_000)
      channel.stateChanged.subscribe((state) => {
        if (state !== "open") return
        clearTimeout(timer)
        resolve()
      })
    })
  }
  return { channel, close: () => pc.close(), pc, transportId }
}

/** Opus 48000/2, the one audio codec the bench's peers offer (the payload type a browser uses). */
export const opusCodec = () => new RTCRtpCodecParameters({ mimeType: "audio/opus", clockRate: 48000, channels: 2, payloadType: 111 })

export interface OpusProducer {
  readonly pc: RTCPeerConnection
  readonly sender: RTCRtpSender
  /** The payload type negotiated for Opus (what the producer was told and what werift writes). */
  readonly payloadType: number
  /** Date.now() when `produce` was answered (the end of signaling). */
  readonly producedAt: number
  readonly close: () => Promise<void>
}

/**
 * An Opus producer on a WebRTC transport of the session, as mediasoup-client makes one: a send-only
 * audio transceiver, the answer's audio m-line receive-only with our payload type, then `produce`
 * with werift's SSRC. Resolves once the peer is connected (RTP sent before would be dropped).
 */
export const openOpusProducer = async (api: Api, sessionId: string): Promise<OpusProducer> => {
  const pc = new RTCPeerConnection({ codecs: { audio: [opusCodec()], video: [] } })
  const { sender } = pc.addTransceiver("audio", { direction: "sendonly" })
  let mid = ""
  let payloadType = 0
  const transportId = await connectTransport(api, sessionId, pc, (offer) => {
    mid = /^a=mid:(\S+)/m.exec(offer)?.[1] ?? ""
    payloadType = Number(/^a=rtpmap:(\d+) opus\/48000\/2/im.exec(offer)?.[1] ?? Number.NaN)
    if (mid === "" || !Number.isInteger(payloadType)) throw new Error(`werift offer without a mid or Opus:\n${offer}`)
    return [{ mLine: `m=audio 7 UDP/TLS/RTP/SAVPF ${payloadType}`, mid, lines: ["a=recvonly", "a=rtcp-mux", `a=rtpmap:${payloadType} opus/48000/2`] }]
  })
  await api("POST", `/api/webrtc/${sessionId}/transports/${transportId}/produce`, {
    kind: "audio",
    rtpParameters: {
      mid,
      codecs: [{ mimeType: "audio/opus", payloadType, clockRate: 48000, channels: 2 }],
      encodings: [{ ssrc: sender.ssrc }]
    }
  }, 201)
  const producedAt = Date.now()
  await untilConnected(pc)
  return { pc, sender, payloadType, producedAt, close: () => pc.close() }
}
