import { RTCPeerConnection, type RTCRtpSender } from "werift"
import { opusCodec, untilConnected } from "./datachannel-client.ts"

// A WHIP publisher (RFC 9725) in Node with werift: one send-only Opus track, the complete offer
// (ICE gathering finished, no trickle) POSTed to /whip, the answer set; RTP is then written through
// the sender, which keeps our sequence numbers and timestamps and puts in its SSRC and the
// negotiated payload type.

export interface WhipPublisher {
  readonly pc: RTCPeerConnection
  readonly sender: RTCRtpSender
  readonly sessionId: string
  /** The resource (Location), relative to the service. */
  readonly location: string
  /** The Opus payload type of the answer (what the sender writes). */
  readonly payloadType: number
  /** Date.now() just before the POST /whip was sent. */
  readonly postedAt: number
  /** Date.now() when the 201 was read. */
  readonly answeredAt: number
  /** How long the offer and ICE gathering took before that (ms). */
  readonly offerMs: number
  /** DELETEs the resource (the session ends) and closes the peer. */
  readonly close: () => Promise<void>
}

const untilGathered = (pc: RTCPeerConnection, timeoutMs: number): Promise<void> =>
  pc.iceGatheringState === "complete" ? Promise.resolve() : new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ICE gathering not complete within ${timeoutMs} ms`)), timeoutMs)
    const subscription = pc.iceGatheringStateChange.subscribe((state) => {
      if (state !== "complete") return
      clearTimeout(timer)
      subscription.unSubscribe()
      resolve()
    })
  })

/** Publishes to `${base}${path}` with `accessToken` and resolves once the peer is connected (ICE and DTLS). */
export const publishWhip = async (base: string, accessToken: string, path = "/whip"): Promise<WhipPublisher> => {
  const began = Date.now()
  const pc = new RTCPeerConnection({ codecs: { audio: [opusCodec()], video: [] } })
  try {
    const { sender } = pc.addTransceiver("audio", { direction: "sendonly" })
    await pc.setLocalDescription(await pc.createOffer())
    await untilGathered(pc, 5_000)
    const offer = pc.localDescription?.sdp ?? ""
    const postedAt = Date.now()
    const response = await fetch(`${base}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${accessToken}`, "content-type": "application/sdp" },
      body: offer
    })
    const answer = await response.text()
    const answeredAt = Date.now()
    if (response.status !== 201) throw new Error(`POST ${path}: ${response.status} ${answer.slice(0, 400)}\noffer:\n${offer}`)
    const location = response.headers.get("location") ?? ""
    const sessionId = response.headers.get("x-session-id") ?? ""
    if (location === "" || sessionId === "") throw new Error(`POST ${path}: 201 without Location or X-Session-Id`)
    await pc.setRemoteDescription({ type: "answer", sdp: answer })
    const payloadType = Number(/^m=audio \d+ \S+ (\d+)/m.exec(answer)?.[1] ?? Number.NaN)
    if (sender.codec?.payloadType !== payloadType) {
      throw new Error(`answer's Opus payload type ${payloadType}, the sender's ${sender.codec?.payloadType}:\n${answer}`)
    }
    await untilConnected(pc)
    const close = async () => {
      await fetch(`${base}${location}`, { method: "DELETE", headers: { authorization: `Bearer ${accessToken}` } }).then((r) => r.body?.cancel())
      await pc.close()
    }
    return { pc, sender, sessionId, location, payloadType, postedAt, answeredAt, offerMs: postedAt - began, close }
  } catch (error) {
    await pc.close()
    throw error
  }
}
