/// <reference lib="dom" />
/**
 * The demo's listen-back player (WHEP): a receive-only offer of audio and video (the server refuses
 * the kinds the session does not send), POSTed at once: the server is ICE-lite, so it learns the
 * browser's address from the browser's checks and no candidate needs trickling. The received
 * stream plays in a media element; an AnalyserNode measures its level and dominant frequency.
 */
import { SDP, sdpRequest } from "./whip.ts"

export interface WhepStats {
  readonly location: string
  readonly connectionState: RTCPeerConnectionState
  readonly kinds: ReadonlyArray<string>
  readonly packetsReceived: number
  readonly totalAudioEnergy: number
  /** RMS of the newest analysed block, and its dominant frequency (Hz). */
  readonly level: number
  readonly peakHz: number
  /** Dominant frequencies of the audible blocks, oldest first (at most 400: 40 s at 10 a second). */
  readonly heard: ReadonlyArray<{ readonly at: number; readonly hz: number }>
}

const AUDIBLE_RMS = 0.01
const HEARD_KEPT = 400

export class WhepPlayer {
  private level = 0
  private peakHz = 0
  private readonly heard: Array<{ at: number; hz: number }> = []
  private context: AudioContext | undefined
  private sampler: ReturnType<typeof setInterval> | undefined

  readonly pc: RTCPeerConnection
  readonly location: string
  readonly stream: MediaStream
  private readonly token: string

  private constructor(pc: RTCPeerConnection, token: string, location: string, stream: MediaStream) {
    this.pc = pc
    this.token = token
    this.location = location
    this.stream = stream
  }

  /** Plays session media from `url` (`/whep/sessions/<id>`) with `token` (an access or share token) in `element`. */
  static async play(url: string, token: string, element: HTMLMediaElement): Promise<WhepPlayer> {
    const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" })
    try {
      const stream = new MediaStream()
      pc.addEventListener("track", ({ track }) => stream.addTrack(track))
      pc.addTransceiver("audio", { direction: "recvonly" })
      pc.addTransceiver("video", { direction: "recvonly" })
      await pc.setLocalDescription(await pc.createOffer())
      const res = await sdpRequest("POST", url, token, [201], { type: SDP, text: pc.localDescription?.sdp ?? "" })
      const answer = await res.text()
      const location = res.headers.get("location")
      if (location === null) throw new Error("POST /whep answered without Location")
      await pc.setRemoteDescription({ type: "answer", sdp: answer })
      const player = new WhepPlayer(pc, token, new URL(location, res.url).href, stream)
      element.srcObject = stream
      await element.play().catch(() => undefined) // without a gesture the controls still play it
      player.analyse()
      return player
    } catch (error) {
      pc.close()
      throw error
    }
  }

  /** Level and dominant frequency of the received audio, ten times a second. */
  private analyse(): void {
    const track = this.pc.getReceivers().find((r) => r.track.kind === "audio")?.track
    if (track === undefined) return
    const context = new AudioContext()
    this.context = context
    const analyser = context.createAnalyser()
    analyser.fftSize = 8192
    analyser.smoothingTimeConstant = 0
    context.createMediaStreamSource(new MediaStream([track])).connect(analyser)
    const samples = new Float32Array(analyser.fftSize)
    const spectrum = new Float32Array(analyser.frequencyBinCount)
    this.sampler = setInterval(() => {
      analyser.getFloatTimeDomainData(samples)
      analyser.getFloatFrequencyData(spectrum)
      let energy = 0
      for (const s of samples) energy += s * s
      this.level = Math.sqrt(energy / samples.length)
      let peak = 0
      for (let i = 1; i < spectrum.length; i++) if ((spectrum[i] ?? -Infinity) > (spectrum[peak] ?? -Infinity)) peak = i
      this.peakHz = (peak * context.sampleRate) / analyser.fftSize
      if (this.level < AUDIBLE_RMS) return
      this.heard.push({ at: Date.now(), hz: Math.round(this.peakHz) })
      if (this.heard.length > HEARD_KEPT) this.heard.shift()
    }, 100)
    if (context.state !== "running") void context.resume()
  }

  async stats(): Promise<WhepStats> {
    let packetsReceived = 0
    let totalAudioEnergy = 0
    // RTCStatsReport's entries are `any` in lib.dom: read them as unknown records.
    const reports: ReadonlyMap<string, unknown> = await this.pc.getStats()
    for (const report of reports.values()) {
      if (typeof report !== "object" || report === null) continue
      const stat: Readonly<Record<string, unknown>> = { ...report }
      if (stat["type"] !== "inbound-rtp") continue
      if (typeof stat["packetsReceived"] === "number") packetsReceived += stat["packetsReceived"]
      if (typeof stat["totalAudioEnergy"] === "number") totalAudioEnergy += stat["totalAudioEnergy"]
    }
    return {
      location: this.location,
      connectionState: this.pc.connectionState,
      kinds: this.stream.getTracks().map((t) => t.kind),
      packetsReceived,
      totalAudioEnergy,
      level: this.level,
      peakHz: this.peakHz,
      heard: [...this.heard]
    }
  }

  /** DELETE ends this viewer only. */
  async stop(): Promise<void> {
    if (this.sampler !== undefined) clearInterval(this.sampler)
    await this.context?.close().catch(() => undefined)
    // DELETE first: a closed peer connection ends its DTLS, and the server drops the resource before the DELETE arrives.
    await sdpRequest("DELETE", this.location, this.token, [200, 404]).finally(() => this.pc.close())
  }
}

/** Describes a player's stats for the page. */
export const describeListen = (l: WhepStats | undefined): string =>
  l === undefined ?
    "-" :
    `${l.connectionState}; ${l.kinds.join("+") || "no tracks yet"}; ${l.packetsReceived} packets; level ${l.level.toFixed(3)}, ${Math.round(l.peakHz)} Hz`

/** The page's listen-back: one player at a time, its stats refreshed twice a second. */
export class ListenBack {
  private player: WhepPlayer | undefined
  private poll: ReturnType<typeof setInterval> | undefined
  private latest: WhepStats | undefined

  private readonly onChange: () => void
  private readonly onError: (message: string) => void

  constructor(onChange: () => void, onError: (message: string) => void) {
    this.onChange = onChange
    this.onError = onError
  }

  get stats(): WhepStats | undefined {
    return this.latest
  }

  async start(url: string, token: string, element: HTMLMediaElement): Promise<void> {
    await this.stop()
    const player = await WhepPlayer.play(url, token, element)
    this.player = player
    this.poll = setInterval(() => {
      player.stats().then((s) => {
        this.latest = s
        this.onChange()
      }, (error: unknown) => this.onError(String(error)))
    }, 500)
  }

  async stop(): Promise<void> {
    if (this.poll !== undefined) clearInterval(this.poll)
    this.poll = undefined
    const player = this.player
    this.player = undefined
    if (player !== undefined) await player.stop().catch((error: unknown) => this.onError(String(error)))
  }
}
