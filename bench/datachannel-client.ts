import { Schema } from "effect"
import { type RTCDataChannel, RTCPeerConnection } from "werift"

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

/** The SDP answer that stands for mediasoup's side of the transport (as mediasoup-client's RemoteSdp writes it). */
const remoteAnswer = (t: typeof Transport.Type): string => {
  const udp = t.iceCandidates.find((c) => c.protocol === "udp")
  const fingerprint = t.dtlsParameters.fingerprints.find((f) => f.algorithm === "sha-256")
  if (udp === undefined || fingerprint === undefined) throw new Error("transport without a UDP candidate or a sha-256 fingerprint")
  return [
    "v=0",
    "o=- 1 1 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    "a=ice-lite",
    "a=group:BUNDLE 0",
    `a=fingerprint:${fingerprint.algorithm} ${fingerprint.value}`,
    "m=application 7 UDP/DTLS/SCTP webrtc-datachannel",
    "c=IN IP4 127.0.0.1",
    "a=mid:0",
    `a=ice-ufrag:${t.iceParameters.usernameFragment}`,
    `a=ice-pwd:${t.iceParameters.password}`,
    `a=candidate:${udp.foundation} 1 udp ${udp.priority} ${udp.ip} ${udp.port} typ host`,
    "a=end-of-candidates",
    "a=setup:passive", // mediasoup is the DTLS server; we connect as the client
    `a=sctp-port:${t.sctpParameters.port}`,
    `a=max-message-size:${t.sctpParameters.maxMessageSize}`,
    ""
  ].join("\r\n")
}

export interface PcmChannel {
  readonly channel: RTCDataChannel
  readonly close: () => Promise<void>
  /** The peer and the session's WebRTC transport it is connected to (more channels can be opened on them). */
  readonly pc: RTCPeerConnection
  readonly transportId: string
}

/** Opens the session's `audio-pcm` data channel (stream 1, ordered) and waits until it is open. */
export const openPcmChannel = async (api: Api, sessionId: string): Promise<PcmChannel> => {
  const base = `/api/webrtc/${sessionId}`
  const transport = decodeTransport(await api("POST", `${base}/transports`, undefined, 201))
  const pc = new RTCPeerConnection({})
  const channel = pc.createDataChannel("audio-pcm", { negotiated: true, id: 1, ordered: true, protocol: "s16le" })
  await pc.setLocalDescription(await pc.createOffer())
  const local = /a=fingerprint:(\S+) (\S+)/.exec(pc.localDescription?.sdp ?? "")
  if (local === null) throw new Error("no local DTLS fingerprint")
  const dtlsParameters = { role: "client", fingerprints: [{ algorithm: local[1], value: (local[2] ?? "").toUpperCase() }] }
  await api("POST", `${base}/transports/${transport.id}/connect`, { dtlsParameters }, 204)
  await pc.setRemoteDescription({ type: "answer", sdp: remoteAnswer(transport) })
  await api("POST", `${base}/transports/${transport.id}/produce-data`, {
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
  return { channel, close: () => pc.close(), pc, transportId: transport.id }
}
