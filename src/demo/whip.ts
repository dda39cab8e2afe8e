/// <reference lib="dom" />
/**
 * The demo's WHIP mode (RFC 9725): the browser's own RTCPeerConnection, no mediasoup-client. The
 * offer is POSTed as soon as it is set (gathering goes on), each candidate then follows by PATCH
 * (`application/trickle-ice-sdpfrag`, RFC 8840), gathering's end as `a=end-of-candidates`; an ICE
 * restart is a PATCH with new credentials, answered with the server's; DELETE ends the session.
 */

export const SDP = "application/sdp"
export const SDP_FRAGMENT = "application/trickle-ice-sdpfrag"

/** A WHIP/WHEP request with a bearer; anything but `expected` is an error naming the problem the server sent. */
export const sdpRequest = async (
  method: string,
  url: string,
  token: string,
  expected: ReadonlyArray<number>,
  body?: { readonly type: string; readonly text: string },
  headers: Record<string, string> = {}
): Promise<Response> => {
  const init: RequestInit = { method, headers: { authorization: `Bearer ${token}`, ...headers } }
  if (body !== undefined) {
    init.headers = { ...init.headers, "content-type": body.type }
    init.body = body.text
  }
  const res = await fetch(url, init)
  if (!expected.includes(res.status)) throw new Error(`${method} ${url}: ${res.status} ${await res.text()}`)
  return res
}

/** The first value of `a=<name>:` in an SDP or fragment. */
export const sdpAttribute = (sdp: string, name: string): string | undefined => {
  const line = sdp.split(/\r?\n/).find((l) => l.startsWith(`a=${name}:`))
  return line?.slice(name.length + 3).trim()
}

/** The ICE credentials of a local description (Chromium and Firefox repeat them in every m-section). */
const iceOf = (pc: RTCPeerConnection) => {
  const sdp = pc.localDescription?.sdp ?? ""
  const ufrag = sdpAttribute(sdp, "ice-ufrag")
  const pwd = sdpAttribute(sdp, "ice-pwd")
  if (ufrag === undefined || pwd === undefined) throw new Error("the local description has no ICE credentials")
  return { ufrag, pwd }
}

export interface WhipStats {
  readonly location: string | undefined
  readonly etag: string | undefined
  /** The ICE username fragment of the current local description. */
  readonly ufrag: string | undefined
  readonly connectionState: RTCPeerConnectionState
  readonly candidatesSent: number
  readonly trickles: number
  readonly endOfCandidatesSent: number
  readonly restarts: number
}

export class WhipPublisher {
  readonly pc: RTCPeerConnection
  readonly sessionId: string
  private readonly token: string
  private readonly onError: (message: string) => void
  private location: string
  private etag: string
  private answer: string
  /** One PATCH at a time: a trickle never overtakes an ICE restart (it would carry credentials the server has not seen). */
  private queue: Promise<void> = Promise.resolve()
  private readonly pending: Array<RTCIceCandidate> = []
  private endPending = false
  private candidatesSent = 0
  private trickles = 0
  private endOfCandidatesSent = 0
  private restarts = 0

  private constructor(
    pc: RTCPeerConnection,
    token: string,
    onError: (message: string) => void,
    created: { readonly sessionId: string; readonly location: string; readonly etag: string; readonly answer: string }
  ) {
    this.pc = pc
    this.token = token
    this.onError = onError
    this.sessionId = created.sessionId
    this.location = created.location
    this.etag = created.etag
    this.answer = created.answer
  }

  /** Offers `stream`'s tracks send-only to `endpoint` (`/whip`, or `/whip/sessions/<id>` for a pending session). */
  static async publish(endpoint: string, token: string, stream: MediaStream, onError: (message: string) => void): Promise<WhipPublisher> {
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" })
    try {
      for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: "sendonly", streams: [stream] })
      // Candidates found before the resource exists wait for it.
      const early: Array<RTCIceCandidate | null> = []
      const hold = ({ candidate }: RTCPeerConnectionIceEvent) => void early.push(candidate)
      pc.addEventListener("icecandidate", hold)
      await pc.setLocalDescription(await pc.createOffer())
      const res = await sdpRequest("POST", endpoint, token, [201], { type: SDP, text: pc.localDescription?.sdp ?? "" })
      const answer = await res.text()
      const location = res.headers.get("location")
      const sessionId = res.headers.get("x-session-id")
      if (location === null || sessionId === null) throw new Error("POST /whip answered without Location or X-Session-Id")
      const created = { sessionId, location: new URL(location, res.url).href, etag: res.headers.get("etag") ?? "*", answer }
      await pc.setRemoteDescription({ type: "answer", sdp: answer })
      const publisher = new WhipPublisher(pc, token, onError, created)
      pc.removeEventListener("icecandidate", hold)
      pc.addEventListener("icecandidate", ({ candidate }) => publisher.trickle(candidate))
      for (const candidate of early) publisher.trickle(candidate)
      return publisher
    } catch (error) {
      pc.close()
      throw error
    }
  }

  /** A gathered candidate (null: gathering ended) goes out with the next PATCH. */
  private trickle(candidate: RTCIceCandidate | null): void {
    if (candidate === null) this.endPending = true
    else if (candidate.candidate !== "") this.pending.push(candidate)
    // A failed PATCH is reported by the queue.
    this.enqueue(() => this.flush()).catch(() => undefined)
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const next = this.queue.then(task)
    this.queue = next.catch((error: unknown) => this.onError(String(error)))
    return next
  }

  /** The fragment of the current ICE credentials for the first (bundled) m-section, with `lines` under it. */
  private fragment(lines: ReadonlyArray<string>): string {
    const { ufrag, pwd } = iceOf(this.pc)
    const first = this.pc.getTransceivers()[0]
    const kind = first?.receiver.track.kind ?? "audio"
    return [`a=ice-ufrag:${ufrag}`, `a=ice-pwd:${pwd}`, `m=${kind} 9 UDP/TLS/RTP/SAVPF 0`, `a=mid:${first?.mid ?? "0"}`, ...lines].join("\r\n") + "\r\n"
  }

  /** Sends what gathered since the last PATCH: the current generation's candidates (older ones would read as a restart). */
  private async flush(): Promise<void> {
    const { ufrag } = iceOf(this.pc)
    const candidates = this.pending.splice(0).filter((c) => c.usernameFragment === null || c.usernameFragment === ufrag)
    const end = this.endPending
    this.endPending = false
    if (candidates.length === 0 && !end) return
    const lines = [...candidates.map((c) => `a=${c.candidate}`), ...(end ? ["a=end-of-candidates"] : [])]
    await sdpRequest("PATCH", this.location, this.token, [204], { type: SDP_FRAGMENT, text: this.fragment(lines) }, { "if-match": this.etag })
    this.candidatesSent += candidates.length
    this.trickles++
    if (end) this.endOfCandidatesSent++
  }

  /** ICE restart: a new offer's credentials by PATCH; the server's new ones replace those of the last answer. */
  restartIce(): Promise<void> {
    return this.enqueue(async () => {
      await this.pc.setLocalDescription(await this.pc.createOffer({ iceRestart: true }))
      const res = await sdpRequest("PATCH", this.location, this.token, [200], { type: SDP_FRAGMENT, text: this.fragment([]) }, { "if-match": this.etag })
      const reply = await res.text()
      const ufrag = sdpAttribute(reply, "ice-ufrag")
      const pwd = sdpAttribute(reply, "ice-pwd")
      if (ufrag === undefined || pwd === undefined) throw new Error(`the ICE restart answer has no credentials: ${reply}`)
      this.etag = res.headers.get("etag") ?? this.etag
      this.answer = this.answer.replace(/^a=ice-ufrag:.*$/gm, `a=ice-ufrag:${ufrag}`).replace(/^a=ice-pwd:.*$/gm, `a=ice-pwd:${pwd}`)
      await this.pc.setRemoteDescription({ type: "answer", sdp: this.answer })
      this.restarts++
    })
  }

  /** DELETE, then close: the server ends the session (completed); closed first, the server would see DTLS end before the DELETE. */
  async stop(): Promise<void> {
    try {
      await sdpRequest("DELETE", this.location, this.token, [200])
    } finally {
      this.pc.close()
    }
  }

  /** RTP packets sent and the round trip time of the nominated pair, from the browser's own stats. */
  async rtpStats(): Promise<{ packetsSent: number; rttMs: number | undefined }> {
    let packetsSent = 0
    let rttMs: number | undefined
    // RTCStatsReport's entries are `any` in lib.dom: read them as unknown records.
    const reports: ReadonlyMap<string, unknown> = await this.pc.getStats()
    for (const report of reports.values()) {
      if (typeof report !== "object" || report === null) continue
      const stat: Readonly<Record<string, unknown>> = { ...report }
      if (stat["type"] === "outbound-rtp" && typeof stat["packetsSent"] === "number") packetsSent += stat["packetsSent"]
      if (stat["type"] === "candidate-pair" && stat["nominated"] === true && typeof stat["currentRoundTripTime"] === "number") {
        rttMs = stat["currentRoundTripTime"] * 1000
      }
    }
    return { packetsSent, rttMs }
  }

  /** The resource's transport id (the last path segment of its Location). */
  get resourceId(): string {
    return new URL(this.location).pathname.split("/").pop() ?? ""
  }

  stats(): WhipStats {
    const sdp = this.pc.localDescription?.sdp ?? ""
    return {
      location: this.location,
      etag: this.etag,
      ufrag: sdpAttribute(sdp, "ice-ufrag"),
      connectionState: this.pc.connectionState,
      candidatesSent: this.candidatesSent,
      trickles: this.trickles,
      endOfCandidatesSent: this.endOfCandidatesSent,
      restarts: this.restarts
    }
  }
}

/** Describes a publisher's stats for the page. */
export const describeWhip = (w: WhipStats | undefined): string =>
  w === undefined ?
    "-" :
    `${w.connectionState}; ${w.candidatesSent} candidates in ${w.trickles} PATCHes${
      w.endOfCandidatesSent > 0 ? " + end-of-candidates" : ""
    }; ${w.restarts} ICE restarts; ETag ${w.etag ?? "-"}`
