/// <reference lib="dom" />
/**
 * The browser demo (served at GET /demo, bundled by esbuild on first request): get a device token,
 * start a session, stream the microphone either as Opus over a WebRTC transport or as 16 kHz PCM
 * chunks over a data channel (label "audio-pcm"), and show a level meter, chunks sent and
 * acknowledged, latency and transcripts (server-sent events, and the server's events data channel,
 * which also answers rejected chunks). The "whip" path publishes by WHIP with the browser's own
 * RTCPeerConnection (`whip.ts`); any session plays back by WHEP (`whep.ts`). `window.demo` is the hook
 * the end-to-end tests drive: `start(path, options)`, `stop()`, `stats()`, `sendRaw(bytes)`,
 * `restartIce()`, `share()`, `listen(url, token)`, `stopListening()`.
 */
import { Schema } from "effect"
import { Device, type types } from "mediasoup-client"
import { Transcript as TranscriptSchema } from "../schemas/asr.ts"
import { ServerEvent } from "../schemas/audio.ts"
import type { ShareGrant } from "../schemas/whip.ts"
import { Chunker, Downsampler, toInt16 } from "./pcm.ts"
import { describeListen, ListenBack, type WhepStats } from "./whep.ts"
import { describeWhip, WhipPublisher, type WhipStats } from "./whip.ts"

export type AudioPathName = "webrtc" | "pcm" | "whip"

export interface StartOptions {
  /** Operator provisioning key: registers a device for `userId`, then exchanges it for a token. */
  readonly provisioningKey?: string
  readonly userId?: string
  /** Or an access token obtained elsewhere. */
  readonly accessToken?: string
  /** PCM path: chunk length in ms (20..100, default 40). */
  readonly chunkMs?: number
  /** The session's idle timeout (10..86400 s; default: the server's). */
  readonly idleTimeoutSeconds?: number
}

export interface Transcript {
  readonly sessionId: string
  readonly text: string
  readonly isFinal: boolean
  readonly startMs: number
  readonly endMs: number
  readonly confidence: number
  /** When the page received it (ms since epoch). */
  readonly receivedAt: number
}

export interface DemoStats {
  readonly path: AudioPathName | undefined
  readonly sessionId: string | undefined
  readonly state: string
  readonly level: number
  readonly chunksSent: number
  readonly audioMsSent: number
  readonly firstCaptureTimeMs: number | undefined
  /** WebRTC path: RTP packets the browser sent, and the producer's packet count on the server. */
  readonly packetsSent: number
  readonly packetsAcknowledged: number
  /** Audio ms covered by final transcripts (both paths). */
  readonly audioMsAcknowledged: number
  readonly rttMs: number | undefined
  /** Now minus the capture time of the end of the newest final transcript's audio. */
  readonly transcriptLagMs: number | undefined
  readonly transcripts: ReadonlyArray<Transcript>
  readonly errors: ReadonlyArray<string>
  /** From the server's events data channel: rejected chunks, and how many transcripts came that way. */
  readonly channelErrors: ReadonlyArray<{ readonly reason: string; readonly sequence?: number }>
  readonly channelTranscripts: number
  /** WHIP path: the resource, its ETag and what was PATCHed. */
  readonly whip: WhipStats | undefined
  /** The listen-back player (WHEP), refreshed twice a second. */
  readonly listen: WhepStats | undefined
  readonly share: ShareGrant | undefined
}

/** The element `id` if it is a `kind` (e.g. `HTMLInputElement`), else null. */
const $ = <T extends HTMLElement>(id: string, kind: new() => T): T | null => {
  const element = document.getElementById(id)
  return element instanceof kind ? element : null
}

/** The server-sent events' data (JSON): `event: transcript` and `event: state`. */
const decodeTranscriptEvent = Schema.decodeUnknownSync(Schema.fromJsonString(TranscriptSchema))
const decodeStateEvent = Schema.decodeUnknownSync(Schema.fromJsonString(Schema.Struct({ state: Schema.String })))
/** A message of the server's events data channel (JSON text). */
const decodeServerEvent = Schema.decodeUnknownResult(Schema.fromJsonString(ServerEvent))

class HttpError extends Error {}

/** The worklet that hands every 128-sample block of the first channel to the page (served beside the page, so a CSP of 'self' allows it). */
const TAP_WORKLET_URL = "/demo/tap-worklet.js"

class Demo {
  private token: string | undefined
  private sessionId: string | undefined
  private path: AudioPathName | undefined
  private state = "idle"
  private level = 0
  private chunksSent = 0
  private audioMsSent = 0
  private firstCaptureTimeMs: number | undefined
  private packetsSent = 0
  private packetsAcknowledged = 0
  private rttMs: number | undefined
  private transcriptLagMs: number | undefined
  private readonly transcripts: Array<Transcript> = []
  private readonly errors: Array<string> = []
  private readonly channelErrors: Array<{ readonly reason: string; readonly sequence?: number }> = []
  private channelTranscripts = 0
  private stream: MediaStream | undefined
  private context: AudioContext | undefined
  private transport: types.Transport | undefined
  private recvTransport: types.Transport | undefined
  private producer: types.Producer | undefined
  private dataProducer: types.DataProducer | undefined
  private events: EventSource | undefined
  private poll: ReturnType<typeof setInterval> | undefined
  private whip: WhipPublisher | undefined
  private readonly listenBack = new ListenBack(() => this.render(), (message) => this.error(message))
  private shareGrant: ShareGrant | undefined

  // ---- HTTP ---------------------------------------------------------------------------------

  private async api<T>(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const auth: Record<string, string> = this.token === undefined ? {} : { authorization: `Bearer ${this.token}` }
    const init: RequestInit = { method, headers: { "content-type": "application/json", ...auth, ...headers } }
    if (body !== undefined) init.body = JSON.stringify(body)
    const res = await fetch(url, init)
    const text = await res.text()
    if (!res.ok) throw new HttpError(`${method} ${url}: ${res.status} ${text}`)
    // The demo trusts its own server's JSON (the server validates its answers; mediasoup's parameter types have no schema here).
    // eslint-disable-next-line @typescript-eslint/consistent-type-assertions
    return (text.length > 0 ? JSON.parse(text) : undefined) as T
  }

  /** Registers a device with the provisioning key and exchanges its secret for an access token. */
  async getToken(provisioningKey: string, userId: string): Promise<string> {
    const device = await this.api<{ deviceId: string; deviceSecret: string }>("POST", "/api/auth/devices", { userId, name: "browser demo" }, {
      "x-provisioning-key": provisioningKey
    })
    const tokens = await this.api<{ accessToken: string }>("POST", "/api/auth/token", device)
    this.token = tokens.accessToken
    this.render()
    return tokens.accessToken
  }

  // ---- start / stop -------------------------------------------------------------------------

  /** Starts a session and streams the microphone by `path`; resolves with the session id once audio flows. */
  async start(path: AudioPathName, options: StartOptions = {}): Promise<string> {
    if (this.sessionId !== undefined) throw new Error("already started: stop() first")
    this.reset()
    this.path = path
    try {
      if (options.accessToken !== undefined) this.token = options.accessToken
      if (this.token === undefined) {
        if (options.provisioningKey === undefined || options.userId === undefined) throw new Error("no access token: give a provisioning key and user id")
        await this.getToken(options.provisioningKey, options.userId)
      }
      if (path === "whip") return await this.startWhip(this.token ?? "")
      const config = options.idleTimeoutSeconds === undefined ? {} : { idleTimeoutSeconds: options.idleTimeoutSeconds }
      const session = await this.api<{ id: string; state: string }>("POST", "/api/session", config)
      this.sessionId = session.id
      this.setState(session.state)
      this.subscribe(session.id)

      const base = `/api/webrtc/${session.id}`
      const device = new Device()
      await device.load({ routerRtpCapabilities: await this.api<types.RtpCapabilities>("GET", `${base}/rtp-capabilities`) })
      const transport = await this.transportFor(device, base, "send")
      this.transport = transport
      const tid = transport.id
      transport.on("produce", ({ kind, rtpParameters, appData }, done, fail) => {
        this.api<{ producerId: string }>("POST", `${base}/transports/${tid}/produce`, { kind, rtpParameters, appData })
          .then(({ producerId }) => done({ id: producerId }), fail)
      })
      transport.on("producedata", ({ sctpStreamParameters, label, protocol, appData }, done, fail) => {
        this.api<{ dataProducerId: string }>("POST", `${base}/transports/${tid}/produce-data`, { sctpStreamParameters, label, protocol, appData })
          .then(({ dataProducerId }) => done({ id: dataProducerId }), fail)
      })
      transport.on("connectionstatechange", (state) => {
        if (state === "failed") this.error(`transport ${state}`)
      })

      await this.openEventsChannel(device, base)

      if (path === "pcm") {
        // The data channel first, so no captured audio waits for it.
        const dataProducer = await transport.produceData({ ordered: true, label: "audio-pcm", protocol: "s16le" })
        this.dataProducer = dataProducer
        if (dataProducer.readyState !== "open") {
          await new Promise<void>((resolve, reject) => {
            dataProducer.on("open", () => resolve())
            dataProducer.on("error", (error) => reject(error))
          })
        }
      }

      const stream = await this.microphone()
      const track = stream.getAudioTracks()[0]
      if (track === undefined) throw new Error("no audio track")
      await this.capture(stream, path === "pcm" ? options.chunkMs ?? 40 : undefined)
      if (path === "webrtc") {
        this.producer = await transport.produce({ track, codecOptions: { opusStereo: false, opusDtx: false, opusFec: true } })
      }
      this.poll = setInterval(() => void this.pollStats(), 1000)
      this.render()
      return session.id
    } catch (error) {
      this.error(String(error))
      throw error
    }
  }

  /** Raw microphone: no echo cancellation, noise suppression or gain control. */
  private async microphone(): Promise<MediaStream> {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 }
    })
    this.stream = stream
    return stream
  }

  /** WHIP: the offer makes the session; resolves once the peer connection is connected. */
  private async startWhip(token: string): Promise<string> {
    const stream = await this.microphone()
    const whip = await WhipPublisher.publish("/whip", token, stream, (message) => this.error(message))
    this.whip = whip
    this.sessionId = whip.sessionId
    whip.pc.addEventListener("connectionstatechange", () => {
      if (whip.pc.connectionState === "failed") this.error("WHIP peer connection failed")
      this.render()
    })
    this.subscribe(whip.sessionId)
    await this.capture(stream, undefined)
    this.setState((await this.api<{ state: string }>("GET", `/api/session/${whip.sessionId}`)).state)
    for (let waited = 0; whip.pc.connectionState !== "connected"; waited += 50) {
      if (waited > 10_000 || whip.pc.connectionState === "failed") throw new Error(`WHIP peer connection ${whip.pc.connectionState}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    this.poll = setInterval(() => void this.pollStats(), 1000)
    this.render()
    return whip.sessionId
  }

  /** WHIP path: an ICE restart by PATCH. */
  async restartIce(): Promise<void> {
    if (this.whip === undefined) throw new Error("no WHIP session: start(\"whip\") first")
    await this.whip.restartIce()
    this.render()
  }

  /** A share token for the current session: its WHEP URL and the bearer that opens it. */
  async share(ttlSeconds?: number): Promise<ShareGrant> {
    if (this.sessionId === undefined) throw new Error("no session to share")
    this.shareGrant = await this.api<ShareGrant>("POST", `/api/session/${this.sessionId}/share`, ttlSeconds === undefined ? {} : { ttlSeconds })
    this.render()
    return this.shareGrant
  }

  /** Plays a session back by WHEP: `url` and `token` default to the current session and this device's token. */
  async listen(url?: string, token?: string): Promise<void> {
    const target = url || (this.sessionId === undefined ? undefined : `/whep/sessions/${this.sessionId}`)
    const bearer = token || this.token
    const element = $("listen-player", HTMLMediaElement)
    if (target === undefined || bearer === undefined || element === null) throw new Error("nothing to listen to: start a session or give a WHEP URL and token")
    await this.listenBack.start(target, bearer, element)
  }

  stopListening(): Promise<void> {
    return this.listenBack.stop()
  }

  /** Stops streaming, closes the transport and stops the session (which finalizes its audio); WHIP: DELETE. */
  async stop(): Promise<void> {
    const id = this.sessionId
    const whip = this.whip
    this.whip = undefined
    if (this.poll !== undefined) clearInterval(this.poll)
    this.poll = undefined
    await this.stopListening()
    // Capture ends first; what the data channel still holds is let out before the transport closes.
    this.stream?.getTracks().forEach((t) => t.stop())
    await this.context?.close().catch(() => undefined)
    const dataProducer = this.dataProducer
    for (let waited = 0; dataProducer !== undefined && !dataProducer.closed && dataProducer.bufferedAmount > 0 && waited < 2000; waited += 20) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    this.producer?.close()
    this.dataProducer?.close()
    this.transport?.close()
    this.recvTransport?.close()
    this.stream = undefined
    this.producer = undefined
    this.dataProducer = undefined
    this.transport = undefined
    this.recvTransport = undefined
    this.context = undefined
    if (id !== undefined) {
      try {
        if (whip !== undefined) await whip.stop()
        const session = whip === undefined
          ? await this.api<{ state: string }>("POST", `/api/session/${id}/stop`)
          : await this.api<{ state: string }>("GET", `/api/session/${id}`)
        this.setState(session?.state ?? "completed")
      } catch (error) {
        this.error(String(error))
      }
    }
    this.events?.close()
    this.events = undefined
    this.sessionId = undefined
    this.render()
  }

  stats(): DemoStats {
    return {
      path: this.path,
      sessionId: this.sessionId,
      state: this.state,
      level: this.level,
      chunksSent: this.chunksSent,
      audioMsSent: this.audioMsSent,
      firstCaptureTimeMs: this.firstCaptureTimeMs,
      packetsSent: this.packetsSent,
      packetsAcknowledged: this.packetsAcknowledged,
      audioMsAcknowledged: this.transcripts.filter((t) => t.isFinal).reduce((ms, t) => ms + (t.endMs - t.startMs), 0),
      rttMs: this.rttMs,
      transcriptLagMs: this.transcriptLagMs,
      transcripts: [...this.transcripts],
      errors: [...this.errors],
      channelErrors: [...this.channelErrors],
      channelTranscripts: this.channelTranscripts,
      whip: this.whip?.stats(),
      listen: this.listenBack.stats,
      share: this.shareGrant
    }
  }

  /** Sends raw bytes on the PCM data channel as they are (to see how the server answers a bad chunk). */
  sendRaw(bytes: ReadonlyArray<number>): void {
    const producer = this.dataProducer
    if (producer === undefined || producer.closed) throw new Error("no PCM data channel: start(\"pcm\") first")
    producer.send(Uint8Array.from(bytes).buffer)
  }

  // ---- transports ---------------------------------------------------------------------------

  /** A WebRTC transport of the session (send: ours to produce on; recv: for the server's events channel). */
  private async transportFor(device: Device, base: string, direction: "send" | "recv"): Promise<types.Transport> {
    const info = await this.api<types.TransportOptions>("POST", `${base}/transports`)
    const options: types.TransportOptions = {
      id: info.id,
      iceParameters: info.iceParameters,
      iceCandidates: info.iceCandidates,
      dtlsParameters: info.dtlsParameters,
      ...(info.sctpParameters === undefined ? {} : { sctpParameters: info.sctpParameters }),
      ...(info.iceServers === undefined ? {} : { iceServers: info.iceServers })
    }
    const transport = direction === "send" ? device.createSendTransport(options) : device.createRecvTransport(options)
    transport.on("connect", ({ dtlsParameters }, done, fail) => {
      this.api("POST", `${base}/transports/${transport.id}/connect`, { dtlsParameters }).then(() => done(), fail)
    })
    return transport
  }

  /** Consumes the server's events data channel: chunk errors and transcripts. */
  private async openEventsChannel(device: Device, base: string): Promise<void> {
    const transport = await this.transportFor(device, base, "recv")
    this.recvTransport = transport
    const channel = await this.api<types.DataConsumerOptions>("POST", `${base}/transports/${transport.id}/events-channel`)
    const consumer = await transport.consumeData(channel)
    consumer.on("message", (data: unknown) => {
      const decoded = decodeServerEvent(data)
      if (decoded._tag === "Failure") return this.error(`unexpected events channel message: ${String(data)}`)
      const message = decoded.success
      if (message.type === "transcript") this.channelTranscripts++
      else if (message.type === "going_away") this.error("the server is shutting down; start a new session")
      else if (message.type === "session_error") this.error(message.detail)
      else this.channelErrors.push(message.sequence === undefined ? { reason: message.reason } : { reason: message.reason, sequence: message.sequence })
      this.render()
    })
  }

  // ---- audio capture: level meter, and on the PCM path the chunks ---------------------------

  private async capture(stream: MediaStream, chunkMs: number | undefined): Promise<void> {
    const context = new AudioContext()
    this.context = context
    await context.audioWorklet.addModule(TAP_WORKLET_URL)
    const source = context.createMediaStreamSource(stream)
    const tap = new AudioWorkletNode(context, "auralink-tap", { numberOfInputs: 1, numberOfOutputs: 1, channelCount: 1, channelCountMode: "explicit" })
    // Pulled through a muted gain, so the graph runs without playing the microphone back.
    const mute = context.createGain()
    mute.gain.value = 0
    source.connect(tap).connect(mute).connect(context.destination)
    const downsampler = chunkMs === undefined ? undefined : new Downsampler(context.sampleRate)
    const chunker = chunkMs === undefined ? undefined : new Chunker(chunkMs, Date.now, (downsampler?.delayMs ?? 0) + context.baseLatency * 1000)
    tap.port.onmessage = (event: MessageEvent<Float32Array>) => {
      const block = event.data
      let energy = 0
      for (let i = 0; i < block.length; i++) energy += block[i]! * block[i]!
      this.level = 0.8 * this.level + 0.2 * Math.sqrt(energy / Math.max(1, block.length))
      if (downsampler === undefined || chunker === undefined) return
      for (const chunk of chunker.push(toInt16(downsampler.push(block)))) this.send(chunk.bytes, chunk.captureTimeMs, chunk.durationMs)
    }
    if (context.state !== "running") await context.resume()
  }

  private send(bytes: ArrayBuffer, captureTimeMs: number, durationMs: number): void {
    const producer = this.dataProducer
    if (producer === undefined || producer.closed || producer.readyState !== "open") return
    producer.send(bytes)
    this.chunksSent++
    this.audioMsSent += durationMs
    this.firstCaptureTimeMs ??= captureTimeMs
  }

  // ---- server events and stats ----------------------------------------------------------------

  private subscribe(sessionId: string): void {
    const events = new EventSource(`/api/webrtc/${sessionId}/events?access_token=${encodeURIComponent(this.token ?? "")}`)
    this.events = events
    events.addEventListener("transcript", (event) => {
      if (!(event instanceof MessageEvent)) return
      const t = decodeTranscriptEvent(event.data)
      const transcript: Transcript = { ...t, receivedAt: Date.now() }
      this.transcripts.push(transcript)
      if (transcript.isFinal && this.firstCaptureTimeMs !== undefined) {
        this.transcriptLagMs = transcript.receivedAt - (this.firstCaptureTimeMs + transcript.endMs)
      }
      this.render()
    })
    events.addEventListener("state", (event) => {
      if (!(event instanceof MessageEvent)) return
      const { state } = decodeStateEvent(event.data)
      this.setState(state)
    })
  }

  /** WHIP path: the browser's RTP stats, and the packets the producers of its resource's transport received. */
  private async pollWhip(whip: WhipPublisher): Promise<void> {
    const rtp = await whip.rtpStats()
    this.packetsSent = rtp.packetsSent
    this.rttMs = rtp.rttMs
    const stats = await this.api<{ producers: Array<{ stats: Array<{ packetCount?: number }> }> }>(
      "GET",
      `/api/webrtc/${whip.sessionId}/transports/${whip.resourceId}/stats`
    )
    this.packetsAcknowledged = stats.producers.reduce((n, p) => n + (p.stats[0]?.packetCount ?? 0), 0)
  }

  private async pollStats(): Promise<void> {
    const whip = this.whip
    if (whip !== undefined) {
      await this.pollWhip(whip).catch((error: unknown) => this.pollFailed(error))
      return this.render()
    }
    const producer = this.producer
    const transport = this.transport
    if (transport === undefined || transport.closed) return
    try {
      // RTCStatsReport's entries are `any` in lib.dom: read them as unknown records.
      const reports: ReadonlyMap<string, unknown> = await transport.getStats()
      for (const report of reports.values()) {
        if (typeof report !== "object" || report === null) continue
        const stat: Readonly<Record<string, unknown>> = { ...report }
        if (stat["type"] === "outbound-rtp" && stat["kind"] === "audio") this.packetsSent = typeof stat["packetsSent"] === "number" ? stat["packetsSent"] : 0
        if (stat["type"] === "candidate-pair" && stat["nominated"] === true && typeof stat["currentRoundTripTime"] === "number") {
          this.rttMs = stat["currentRoundTripTime"] * 1000
        }
      }
      if (producer !== undefined && this.sessionId !== undefined) {
        const stats = await this.api<{ producers: Array<{ id: string; stats: Array<{ packetCount?: number }> }> }>(
          "GET",
          `/api/webrtc/${this.sessionId}/transports/${transport.id}/stats`
        )
        const mine = stats.producers.find((p) => p.id === producer.id)
        this.packetsAcknowledged = mine?.stats[0]?.packetCount ?? this.packetsAcknowledged
      }
    } catch (error) {
      this.pollFailed(error)
    }
    this.render()
  }

  /** A stats poll that failed while still polling is an error; one that was in flight when stop() began is not (its transport is gone). */
  private pollFailed(error: unknown): void {
    if (this.poll !== undefined) this.error(String(error))
  }

  // ---- page ---------------------------------------------------------------------------------

  private reset(): void {
    this.state = "starting"
    this.level = 0
    this.chunksSent = 0
    this.audioMsSent = 0
    this.firstCaptureTimeMs = undefined
    this.packetsSent = 0
    this.packetsAcknowledged = 0
    this.rttMs = undefined
    this.transcriptLagMs = undefined
    this.transcripts.length = 0
    this.errors.length = 0
    this.channelErrors.length = 0
    this.channelTranscripts = 0
    this.shareGrant = undefined
  }

  private setState(state: string): void {
    this.state = state
    this.render()
  }

  private error(message: string): void {
    this.errors.push(message)
    this.render()
  }

  render(): void {
    const s = this.stats()
    const set = (id: string, text: string) => {
      const el = $(id, HTMLElement)
      if (el !== null) el.textContent = text
    }
    set("token", this.token === undefined ? "none" : `${this.token.slice(0, 16)}…`)
    set("session", s.sessionId ?? "-")
    set("state", s.state)
    set("sent", s.path !== "pcm" ? `${s.packetsSent} RTP packets` : `${s.chunksSent} chunks (${(s.audioMsSent / 1000).toFixed(1)} s)`)
    set(
      "acked",
      s.path !== "pcm"
        ? `${s.packetsAcknowledged} packets at the server; ${(s.audioMsAcknowledged / 1000).toFixed(1)} s transcribed`
        : `${(s.audioMsAcknowledged / 1000).toFixed(1)} s transcribed`
    )
    set(
      "latency",
      `${s.rttMs === undefined ? "-" : `${s.rttMs.toFixed(1)} ms RTT`}; ${
        s.transcriptLagMs === undefined ? "-" : `${Math.round(s.transcriptLagMs)} ms transcript lag`
      }`
    )
    set(
      "errors",
      [...s.errors, ...s.channelErrors.map((e) => `server rejected a chunk: ${e.reason}${e.sequence === undefined ? "" : ` (sequence ${e.sequence})`}`)].join(
        "\n"
      )
    )
    set("whip", describeWhip(s.whip))
    set("share-grant", s.share === undefined ? "-" : `${s.share.whepUrl} (token ${s.share.token}, until ${s.share.expiresAt})`)
    set("listen", describeListen(s.listen))
    const list = $("transcripts", HTMLElement)
    if (list !== null) list.textContent = s.transcripts.map((t) => `${t.isFinal ? "✓" : "…"} [${t.startMs}-${t.endMs} ms] ${t.text}`).join("\n")
  }

  renderLevel(): void {
    const meter = $("level", HTMLMeterElement)
    if (meter !== null) meter.value = Math.min(1, this.level * 4)
    requestAnimationFrame(() => this.renderLevel())
  }
}

const demo = new Demo()
declare global {
  interface Window {
    demo: Demo
  }
}
window.demo = demo

// The form: get a token, then start either path, or stop.
const value = (id: string) => $(id, HTMLInputElement)?.value.trim() ?? ""
const onClick = (id: string, action: () => Promise<unknown>) =>
  $(id, HTMLElement)?.addEventListener("click", () => {
    action().catch((error: unknown) => console.error(error))
  })
onClick("get-token", () => demo.getToken(value("provisioning-key"), value("user-id")))
const formOptions = (): StartOptions => ({ provisioningKey: value("provisioning-key"), userId: value("user-id"), chunkMs: Number(value("chunk-ms")) || 40 })
onClick("start-webrtc", () => demo.start("webrtc", formOptions()))
onClick("start-pcm", () => demo.start("pcm", formOptions()))
onClick("start-whip", () => demo.start("whip", formOptions()))
onClick("restart-ice", () => demo.restartIce())
onClick("stop", () => demo.stop())
const setInput = (id: string, text: string) => {
  const input = $(id, HTMLInputElement)
  if (input !== null) input.value = text
}
onClick("share", async () => {
  const grant = await demo.share()
  setInput("listen-url", grant.whepUrl)
  setInput("listen-token", grant.token)
})
onClick("listen", () => demo.listen(value("listen-url"), value("listen-token")))
onClick("listen-stop", () => demo.stopListening())
demo.render()
demo.renderLevel()
