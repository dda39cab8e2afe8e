import type * as http from "node:http"
import { FakeHttpServer, readBody } from "./fake-server.ts"
import { ParticipantInfo, ParticipantPermission, Room, TokenVerifier, WebhookEvent } from "livekit-server-sdk"
import type { ClaimGrants } from "livekit-server-sdk"
import {
  codeOfStatus,
  guid,
  isJsonObject,
  numberField,
  postWebhook,
  signWebhookBody,
  stringField,
  stringMapField,
  stringsField,
  TwirpFailure,
  twirpError,
  writeTwirpError
} from "./fake-livekit-wire.ts"
import type { JsonObject } from "./fake-livekit-wire.ts"
import { RoomStore, snapshot } from "./fake-livekit-rooms.ts"
import type { Event, ParticipantSettings, RoomEntry, RoomSettings, Subjects, TrackSettings } from "./fake-livekit-rooms.ts"

export interface FakeLiveKitOptions {
  readonly apiKey: string
  readonly apiSecret: string
  readonly webhookUrls?: ReadonlyArray<string>
}

/** `notify: true`: also send the webhooks the real server sends for the change, and await their deliveries. */
export interface Notify {
  readonly notify?: boolean
}

export interface RoomOptions extends RoomSettings, Notify {}
export interface JoinOptions extends ParticipantSettings, Notify {}
export interface TrackOptions extends TrackSettings, Notify {}

/** A webhook to sign: `room`, `identity`, `trackSid` name current state (looked up now), `createdAt` is unix seconds. */
export interface WebhookSpec {
  readonly event: string
  readonly room?: string
  readonly identity?: string
  readonly trackSid?: string
  readonly id?: string
  readonly createdAt?: number
}

export interface SignedWebhook {
  readonly body: string
  readonly authorization: string
  readonly id: string
  readonly createdAt: number
}

const TWIRP_PREFIX = "/twirp/livekit.RoomService/"
const permissionsDenied = () => twirpError("unauthenticated", "permissions denied")

/**
 * A fake LiveKit server: a real node:http server speaking LiveKit's Twirp JSON RoomService (the calls
 * `livekit-server-sdk`'s RoomServiceClient makes, checked against its access token and video grants as the real
 * server checks them) and sending webhooks signed as LiveKit signs them. Rooms, participants and tracks are state a
 * test changes directly; Twirp calls change it as the real server would, webhooks included (sent in the background).
 *
 * Fault injection: `latencyMs` (each Twirp answer is delayed), `failNext(n, status)`, `down()` (listener and every
 * open connection closed: ECONNREFUSED) and `up()` (the same port again).
 */
export class FakeLiveKit extends FakeHttpServer {
  readonly apiKey: string
  /** Where webhooks go; change freely. */
  webhookUrls: Array<string>
  /** Milliseconds every Twirp call waits before it is answered. */
  /** Twirp calls received, by method name (failed ones included). */
  readonly calls = new Map<string, number>()
  /** Webhook deliveries attempted (one per URL per event). */
  webhooksSent = 0
  private readonly apiSecret: string
  private readonly verifier: TokenVerifier
  private readonly state = new RoomStore()
  private readonly background = new Set<Promise<void>>()

  constructor(options: FakeLiveKitOptions) {
    super()
    this.apiKey = options.apiKey
    this.apiSecret = options.apiSecret
    this.webhookUrls = [...(options.webhookUrls ?? [])]
    this.verifier = new TokenVerifier(options.apiKey, options.apiSecret)
  }

  /** Closes the server and waits for webhooks still being delivered in the background. */
  override async stop(): Promise<void> {
    await this.down()
    await this.settled()
  }

  /** Resolves when webhooks sent in the background (by Twirp calls) have been delivered. */
  async settled(): Promise<void> {
    while (this.background.size > 0) await Promise.all(this.background)
  }

  // ---- state ----

  rooms(): ReadonlyArray<Room> {
    return this.state.list().map((entry) => entry.room.clone())
  }
  room(name: string): Room | undefined {
    return this.state.get(name)?.room.clone()
  }
  roomMetadata(name: string): string | undefined {
    return this.state.get(name)?.room.metadata
  }
  /** The room's participants (none for an unknown room, as ListParticipants answers). */
  participants(room: string): ReadonlyArray<ParticipantInfo> {
    return [...(this.state.get(room)?.participants.values() ?? [])].map((p) => p.clone())
  }
  participant(room: string, identity: string): ParticipantInfo | undefined {
    return this.state.get(room)?.participants.get(identity)?.clone()
  }

  async addRoom(name: string, options: RoomOptions = {}): Promise<Room> {
    if (this.state.get(name) !== undefined) throw new Error(`fake LiveKit: room ${name} exists`)
    const entry = this.state.create(name, options)
    await this.notify(options, [["room_started", { room: entry.room.clone() }]])
    return entry.room.clone()
  }

  /** Removes the room; with `notify`, participant_left for each participant (tracks first), then room_finished. */
  async removeRoom(name: string, options: Notify = {}): Promise<void> {
    const entry = this.state.entry(name)
    const events = this.state.finish(entry)
    await this.notify(options, events)
  }

  /** Joins a participant (creating the room as the real server does: room_started first, with `notify`). */
  async join(room: string, identity: string, options: JoinOptions = {}): Promise<ParticipantInfo> {
    const existing = this.state.get(room)
    const entry = existing ?? this.state.create(room, {})
    if (entry.participants.has(identity)) throw new Error(`fake LiveKit: ${identity} is already in ${room}`)
    const events: Array<Event> = existing === undefined ? [["room_started", { room: entry.room.clone() }]] : []
    const participant = this.state.addParticipant(entry, identity, options)
    events.push(["participant_joined", snapshot(entry, participant)])
    await this.notify(options, events)
    return participant.clone()
  }

  /** The participant leaves; with `notify`, track_unpublished for each of its tracks, then participant_left. */
  async leave(room: string, identity: string, options: Notify = {}): Promise<void> {
    const entry = this.state.entry(room)
    await this.notify(options, this.state.removeParticipant(entry, this.state.member(entry, identity)))
  }

  /** Publishes a track (audio: microphone, audio/opus; video: camera, video/VP8 1280x720); resolves its sid. */
  async publishTrack(room: string, identity: string, options: TrackOptions): Promise<string> {
    const entry = this.state.entry(room)
    const participant = this.state.member(entry, identity)
    const track = this.state.addTrack(entry, participant, options)
    await this.notify(options, [["track_published", snapshot(entry, participant, track)]])
    return track.sid
  }

  async unpublishTrack(room: string, identity: string, trackSid: string, options: Notify = {}): Promise<void> {
    const entry = this.state.entry(room)
    const participant = this.state.member(entry, identity)
    const track = participant.tracks.find((t) => t.sid === trackSid)
    if (track === undefined) throw new Error(`fake LiveKit: ${identity} in ${room} has no track ${trackSid}`)
    participant.tracks = participant.tracks.filter((t) => t !== track)
    this.state.changed(entry, participant)
    await this.notify(options, [["track_unpublished", snapshot(entry, participant, track)]])
  }

  /** Rooms `room-0`..`room-<rooms-1>`, each with participants `user-<i>-<j>` publishing one audio track; no webhooks. */
  seed(rooms: number, participantsPerRoom: number): void {
    for (let i = 0; i < rooms; i++) {
      const name = `room-${i}`
      if (this.state.get(name) !== undefined) throw new Error(`fake LiveKit: room ${name} exists`)
      const entry = this.state.create(name, {})
      for (let j = 0; j < participantsPerRoom; j++) {
        this.state.addTrack(entry, this.state.addParticipant(entry, `user-${i}-${j}`, {}), { kind: "audio" })
      }
    }
  }

  // ---- webhooks ----

  /** A webhook signed as LiveKit signs it, not sent: body and `Authorization` to deliver, tamper with or replay. */
  signedWebhook(spec: WebhookSpec): Promise<SignedWebhook> {
    return this.sign(spec.event, this.subjects(spec), spec.id, spec.createdAt)
  }

  /** POSTs a signed webhook to `url`; resolves the HTTP status, rejects on a connection error. */
  deliver(url: string, webhook: Pick<SignedWebhook, "body" | "authorization">): Promise<number> {
    this.webhooksSent++
    return postWebhook(url, webhook.body, webhook.authorization)
  }

  /** Signs once and delivers to every webhook URL; the statuses in URL order (0: no connection). */
  async sendWebhook(spec: WebhookSpec): Promise<ReadonlyArray<number>> {
    return this.deliverAll(await this.signedWebhook(spec))
  }

  private async sign(event: string, subjects: Subjects, id = guid("EV_"), createdAt = Math.floor(Date.now() / 1000)): Promise<SignedWebhook> {
    // fromJson, not the constructor: the SDK's WebhookEvent subclass resets a constructor-given `event` to "".
    const message = WebhookEvent.fromJson({ event, id, createdAt: String(createdAt) })
    if (subjects.room !== undefined) message.room = subjects.room.clone()
    if (subjects.participant !== undefined) message.participant = subjects.participant.clone()
    if (subjects.track !== undefined) message.track = subjects.track.clone()
    const body = message.toJsonString()
    return { body, authorization: await signWebhookBody(this.apiKey, this.apiSecret, body), id, createdAt }
  }

  private deliverAll(webhook: SignedWebhook): Promise<ReadonlyArray<number>> {
    return Promise.all(this.webhookUrls.map((url) => this.deliver(url, webhook).catch(() => 0)))
  }

  /** Sends the events in order (each delivered everywhere before the next), when asked to. */
  private async notify(options: Notify, events: ReadonlyArray<Event>): Promise<void> {
    if (options.notify !== true || this.webhookUrls.length === 0) return
    for (const [name, subjects] of events) await this.deliverAll(await this.sign(name, subjects))
  }

  /** What the real server sends after a Twirp call changed state: in the background, in order. */
  private sendInBackground(events: ReadonlyArray<Event>): void {
    const sending = this.notify({ notify: true }, events)
      .catch(() => undefined)
      .finally(() => this.background.delete(sending))
    this.background.add(sending)
  }

  private subjects(spec: WebhookSpec): Subjects {
    if (spec.room === undefined) return {}
    const entry = this.state.entry(spec.room)
    const participant = spec.identity === undefined ? undefined : this.state.member(entry, spec.identity)
    const owners = participant === undefined ? [...entry.participants.values()] : [participant]
    const track = spec.trackSid === undefined ? undefined : owners.flatMap((p) => p.tracks).find((t) => t.sid === spec.trackSid)
    if (spec.trackSid !== undefined && track === undefined) throw new Error(`fake LiveKit: no track ${spec.trackSid} in ${spec.room}`)
    const owner = participant ?? (track === undefined ? undefined : owners.find((p) => p.tracks.includes(track)))
    return { room: entry.room, ...(owner === undefined ? {} : { participant: owner }), ...(track === undefined ? {} : { track }) }
  }

  // ---- Twirp ----

  protected async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0] ?? "/"
    if (path === "/" && req.method === "GET") {
      res.end("OK")
      return
    }
    const method = path.startsWith(TWIRP_PREFIX) ? path.slice(TWIRP_PREFIX.length) : undefined
    if (method !== undefined) this.calls.set(method, (this.calls.get(method) ?? 0) + 1)
    try {
      const text = await readBody(req)
      const failed = method === undefined ? undefined : await this.injected()
      if (failed !== undefined) throw new TwirpFailure(codeOfStatus(failed), failed, "fake LiveKit: injected failure")
      if (method === undefined || req.method !== "POST") throw twirpError("bad_route", `no handler for path "${path}"`)
      if (!(req.headers["content-type"] ?? "").startsWith("application/json")) {
        throw twirpError("bad_route", `unexpected Content-Type: "${req.headers["content-type"] ?? ""}" (this fake speaks JSON only)`)
      }
      const grants = await this.authenticate(req.headers.authorization)
      let body: unknown
      try {
        body = JSON.parse(text === "" ? "{}" : text)
      } catch {
        throw twirpError("malformed", "the json request could not be decoded")
      }
      if (!isJsonObject(body)) throw twirpError("malformed", "the json request could not be decoded")
      const answer = JSON.stringify(this.route(method, body, grants?.video))
      if (res.destroyed) return
      res.writeHead(200, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(answer) })
      res.end(answer)
    } catch (error) {
      writeTwirpError(res, error instanceof TwirpFailure ? error : twirpError("internal", String(error)))
    }
  }

  /** As the real server's auth middleware: no header, no grants; a bad header or token, 401. */
  private async authenticate(header: string | undefined): Promise<ClaimGrants | undefined> {
    if (header === undefined || header === "") return undefined
    if (!header.startsWith("Bearer ")) throw twirpError("unauthenticated", "invalid authorization header. Must start with Bearer ")
    try {
      return await this.verifier.verify(header.slice("Bearer ".length))
    } catch (error) {
      throw twirpError("unauthenticated", `invalid token: ${error instanceof Error ? error.message : String(error)}`)
    }
  }

  private route(method: string, body: JsonObject, video: ClaimGrants["video"]): unknown {
    const admin = (room: string) => {
      if (video?.roomAdmin !== true || (video.room ?? "") !== room) throw permissionsDenied()
    }
    switch (method) {
      case "ListRooms": {
        if (video?.roomList !== true) throw permissionsDenied()
        const names = stringsField(body, "names")
        const rooms = this.state.list().filter((e) => names.length === 0 || names.includes(e.room.name)).map((e) => e.room.toJson())
        return rooms.length === 0 ? {} : { rooms }
      }
      case "CreateRoom":
        if (video?.roomCreate !== true) throw permissionsDenied()
        return this.twirpCreateRoom(body).toJson()
      case "DeleteRoom": {
        if (video?.roomCreate !== true) throw permissionsDenied()
        const entry = this.twirpRoom(stringField(body, "room"))
        this.sendInBackground(this.state.finish(entry))
        return {}
      }
      case "ListParticipants": {
        const room = stringField(body, "room")
        admin(room)
        const participants = this.participants(room).map((p) => p.toJson())
        return participants.length === 0 ? {} : { participants }
      }
      case "GetParticipant": {
        const room = stringField(body, "room")
        admin(room)
        return this.twirpParticipant(room, stringField(body, "identity"))[1].toJson()
      }
      case "RemoveParticipant": {
        const room = stringField(body, "room")
        admin(room)
        const [entry, participant] = this.twirpParticipant(room, stringField(body, "identity"))
        this.sendInBackground(this.state.removeParticipant(entry, participant))
        return {}
      }
      case "UpdateParticipant": {
        const room = stringField(body, "room")
        admin(room)
        return this.twirpUpdateParticipant(room, body).toJson()
      }
      case "UpdateRoomMetadata": {
        const room = stringField(body, "room")
        admin(room)
        const entry = this.twirpRoom(room)
        entry.room.metadata = stringField(body, "metadata")
        return entry.room.toJson()
      }
      case "MutePublishedTrack": {
        const room = stringField(body, "room")
        admin(room)
        const [entry, participant] = this.twirpParticipant(room, stringField(body, "identity"))
        const track = participant.tracks.find((t) => t.sid === stringField(body, "trackSid"))
        if (track === undefined) throw twirpError("not_found", "track not found")
        track.muted = body["muted"] === true
        this.state.changed(entry, participant)
        return { track: track.toJson() }
      }
      default:
        throw twirpError("bad_route", `no handler for path "${TWIRP_PREFIX}${method}"`)
    }
  }

  private twirpRoom(name: string): RoomEntry {
    const entry = this.state.get(name)
    if (entry === undefined) throw twirpError("not_found", "room not found")
    return entry
  }

  private twirpParticipant(room: string, identity: string): readonly [RoomEntry, ParticipantInfo] {
    const entry = this.state.get(room)
    const participant = entry?.participants.get(identity)
    if (entry === undefined || participant === undefined) throw twirpError("not_found", "participant not found")
    return [entry, participant]
  }

  /** CreateRoom on an existing room answers it, with the given non-empty settings applied (as the real allocator). */
  private twirpCreateRoom(body: JsonObject): Room {
    const name = stringField(body, "name")
    if (name === "") throw twirpError("invalid_argument", "room name is required")
    const settings = {
      metadata: stringField(body, "metadata"),
      emptyTimeout: numberField(body, "emptyTimeout"),
      maxParticipants: numberField(body, "maxParticipants")
    }
    const existing = this.state.get(name)
    if (existing === undefined) {
      const entry = this.state.create(name, { ...settings, emptyTimeout: settings.emptyTimeout || 300 })
      this.sendInBackground([["room_started", { room: entry.room.clone() }]])
      return entry.room
    }
    if (settings.metadata !== "") existing.room.metadata = settings.metadata
    if (settings.emptyTimeout > 0) existing.room.emptyTimeout = settings.emptyTimeout
    if (settings.maxParticipants > 0) existing.room.maxParticipants = settings.maxParticipants
    return existing.room
  }

  /** Non-empty metadata and name replace; attributes merge (an empty value deletes); a permission replaces. */
  private twirpUpdateParticipant(room: string, body: JsonObject): ParticipantInfo {
    const [entry, participant] = this.twirpParticipant(room, stringField(body, "identity"))
    const metadata = stringField(body, "metadata")
    const name = stringField(body, "name")
    if (metadata !== "") participant.metadata = metadata
    if (name !== "") participant.name = name
    for (const [key, value] of stringMapField(body, "attributes")) {
      if (value === "") delete participant.attributes[key]
      else participant.attributes[key] = value
    }
    const permission = body["permission"]
    if (isJsonObject(permission)) {
      try {
        participant.permission = ParticipantPermission.fromJsonString(JSON.stringify(permission), { ignoreUnknownFields: true })
      } catch {
        throw twirpError("malformed", "permission: not a ParticipantPermission")
      }
    }
    this.state.changed(entry, participant)
    return participant
  }
}
