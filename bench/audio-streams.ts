// The audio sessions bench/audio-ingest opens (by its generator process), the same against the
// service and the baseline server:
// - Opus RTP: a comedia PlainTransport (rtcpMux false) producing Opus (PT 100, ssrc 1111); real Opus
//   RTP packets (ffmpeg-encoded tones, captured once) replayed every 20 ms per session with
//   per-session sequence numbers and timestamps, so each session is one continuous stream;
// - PCM over a data channel: a WebRTC transport with the `audio-pcm` data channel, opened by a
//   WebRTC peer (werift, see datachannel-client.ts), sending 40 ms chunks (the demo's default
//   size, 1296-byte messages) of the same tones every 40 ms.
import { createSocket, type Socket } from "node:dgram"
import { captureOpusRtp } from "../test/support/ffmpeg-rtp.ts"
import { toneSequence } from "../test/support/tones.ts"
import { encodeChunk } from "../src/programs/audio/pcm.ts"
import { openPcmChannel } from "./datachannel-client.ts"
import { importRecordKeys } from "./dtls-record-keys.ts"
import { api, field, FRAME_MS, packetAt, type Stream } from "./ingest-rig.ts"

export type AudioPathName = "rtp" | "pcm"

const PCM_CHUNK_MS = 40
const PAYLOAD_TYPE = 100
const SSRC = 1111

/** What streams send: Opus RTP templates (one socket for all), 16 kHz tones for PCM chunks. */
export interface Media {
  readonly templates: ReadonlyArray<Buffer>
  readonly socket: Socket
  readonly tones: Int16Array
}

/** Real Opus RTP, once: ffmpeg encodes the tone sequence (2 s, 20 ms frames) to a socket here. */
export const captureMedia = async (): Promise<Media> => {
  const captured = await captureOpusRtp({ payloadType: PAYLOAD_TYPE, frameMs: FRAME_MS })
  const templates = captured.map((c) => c.packet).filter((p) => p.length > 12 && ((p[1] ?? 0) & 0x7f) === PAYLOAD_TYPE)
  return { templates, socket: createSocket({ type: "udp4", sendBufferSize: 8 * 1024 * 1024 }), tones: toneSequence({ sampleRate: 16_000 }) }
}

/** A session with a comedia plain transport producing Opus: its packets go to the transport's port. */
const openRtpStream = async (base: string, auth: Record<string, string>, media: Media): Promise<Stream> => {
  const sessionId = field(await api(base, "POST", "/api/session", {}, auth, 201), "id")
  const plain = await api(base, "POST", `/api/webrtc/${sessionId}/plain-transports`, { comedia: true, rtcpMux: false }, auth, 201)
  const rtpParameters = {
    codecs: [{ mimeType: "audio/opus", payloadType: PAYLOAD_TYPE, clockRate: 48000, channels: 2, parameters: { "sprop-stereo": 1 } }],
    encodings: [{ ssrc: SSRC }]
  }
  await api(base, "POST", `/api/webrtc/${sessionId}/plain-transports/${field(plain, "id")}/produce`, { kind: "audio", rtpParameters }, auth, 201)
  const port = Number(field(plain, "port"))
  return {
    path: "rtp",
    sessionId,
    everyMs: FRAME_MS,
    send: (index) => media.socket.send(packetAt(media.templates, index, SSRC, PAYLOAD_TYPE), port, "127.0.0.1"),
    close: async () => {},
    startedAt: 0,
    sent: 0
  }
}

/** A session with the PCM data channel open (werift): chunk `index` carries sequence `index`. */
const openPcmStream = async (base: string, auth: Record<string, string>, media: Media): Promise<Stream> => {
  const sessionId = field(await api(base, "POST", "/api/session", {}, auth, 201), "id")
  const { channel, close, pc } = await openPcmChannel((method, path, body, status) => api(base, method, path, body, auth, status), sessionId)
  importRecordKeys(pc)
  const samples = (PCM_CHUNK_MS * 16_000) / 1000
  return {
    path: "pcm",
    sessionId,
    everyMs: PCM_CHUNK_MS,
    send: (index) => {
      const from = (index * samples) % (media.tones.length - samples)
      const chunk = encodeChunk({ sequence: index, captureTimeMs: Date.now(), samples: media.tones.subarray(from, from + samples) })
      channel.send(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
    },
    close,
    startedAt: 0,
    sent: 0
  }
}

export const openStream = (path: AudioPathName, base: string, auth: Record<string, string>, media: Media): Promise<Stream> =>
  (path === "pcm" ? openPcmStream : openRtpStream)(base, auth, media)

/** The paths of the sessions to add to `current` for `n` in all: half of `n` (rounded down) on PCM, the rest RTP. */
export const pathsToAdd = (current: ReadonlyArray<AudioPathName>, n: number): Array<AudioPathName> => {
  const added: Array<AudioPathName> = []
  let pcm = current.filter((p) => p === "pcm").length
  for (let total = current.length; total < n; total++) {
    const path = pcm < Math.floor(n / 2) ? "pcm" : "rtp"
    if (path === "pcm") pcm++
    added.push(path)
  }
  return added
}
