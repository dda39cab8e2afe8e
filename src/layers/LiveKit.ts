import { Context, Duration, Effect, Layer, Option, Redacted, Schema } from "effect"
import { RoomServiceClient, WebhookReceiver } from "livekit-server-sdk"
import { RoomName } from "../schemas/ids.ts"
import type { ParticipantRecord, TrackRecord } from "../schemas/rooms.ts"
import { AppConfig } from "./Config.ts"
import { errorMessage } from "./error-message.ts"
import { Health } from "./Health.ts"
import { keepDecoded, type LiveKitRoom, toParticipant, toRoom, toTrack } from "./livekit/records.ts"

export type { LiveKitRoom } from "./livekit/records.ts"

/** A LiveKit API call that failed: unreachable, timed out, or answered with an error. */
export class LiveKitError extends Schema.TaggedError<LiveKitError>()("LiveKitError", {
  operation: Schema.String,
  detail: Schema.String,
  /** The HTTP status LiveKit answered, when it answered. */
  status: Schema.optionalKey(Schema.Number)
}) {
  override get message(): string {
    return `LiveKit ${this.operation}: ${this.detail}`
  }
}

/** A webhook whose signature does not verify (missing, forged, expired, or the body changed). */
export class WebhookRejected extends Schema.TaggedError<WebhookRejected>()("WebhookRejected", { detail: Schema.String }) {}

/** A verified webhook, as this service reads it; unusable names leave `room`/`participant` None. */
export interface LiveKitWebhook {
  readonly id: string
  readonly event: string
  /** Epoch ms (LiveKit stamps whole seconds). */
  readonly createdAt: number
  readonly room: Option.Option<LiveKitRoom>
  /** The room's name even when only the participant carries it (e.g. participant events without `room`). */
  readonly participant: Option.Option<ParticipantRecord>
  readonly track: Option.Option<TrackRecord>
}

export interface LiveKitApi {
  readonly url: string
  readonly listRooms: Effect.Effect<{ readonly rooms: ReadonlyArray<LiveKitRoom>; readonly skipped: number }, LiveKitError>
  readonly listParticipants: (
    room: RoomName
  ) => Effect.Effect<{ readonly participants: ReadonlyArray<ParticipantRecord>; readonly skipped: number }, LiveKitError>
  /** The room's current metadata (None: no such room). */
  readonly roomMetadata: (room: RoomName) => Effect.Effect<Option.Option<string>, LiveKitError>
  readonly updateRoomMetadata: (room: RoomName, metadata: string) => Effect.Effect<void, LiveKitError>
}

export interface LiveKitService {
  /** None when WEBRTC_SERVER_URL or the key/secret pair is missing: room sync is off, and why. */
  readonly api: Option.Option<LiveKitApi>
  readonly disabledReason: Option.Option<string>
  /** Verifies a webhook's `Authorization` JWT (key, secret, expiry, body SHA-256) and decodes it. None: no key/secret configured. */
  readonly receiveWebhook: Option.Option<(body: string, authorization: string | undefined) => Effect.Effect<LiveKitWebhook, WebhookRejected>>
}

/** The readiness probe lists this one room: a cheap authenticated call. */
const PROBE_ROOM = Schema.decodeSync(RoomName)("auralink-readiness-probe")

const statusOf = (error: unknown): number | undefined => {
  if (typeof error !== "object" || error === null || !("status" in error)) return undefined
  return typeof error.status === "number" ? error.status : undefined
}

const makeApi = (url: string, apiKey: string, apiSecret: string, timeout: Duration.Duration): LiveKitApi => {
  // failover: off — it retries 5xx against other regions of LiveKit Cloud; our retry is the next sync.
  const client = new RoomServiceClient(url, apiKey, apiSecret, { requestTimeout: Math.ceil(Duration.toSeconds(timeout)), failover: false })
  const call = <A>(operation: string, run: () => Promise<A>) =>
    Effect.tryPromise({
      try: run,
      catch: (error) => {
        const status = statusOf(error)
        return new LiveKitError({ operation, detail: errorMessage(error), ...(status === undefined ? {} : { status }) })
      }
    }).pipe(
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () => Effect.fail(new LiveKitError({ operation, detail: `no answer within ${Duration.format(timeout)}` }))
      })
    )
  return {
    url,
    listRooms: Effect.map(call("ListRooms", () => client.listRooms()), (rooms) => {
      const { kept, skipped } = keepDecoded(rooms, toRoom)
      return { rooms: kept, skipped }
    }),
    listParticipants: (room) =>
      Effect.map(call("ListParticipants", () => client.listParticipants(room)), (infos) => {
        const { kept, skipped } = keepDecoded(infos, toParticipant)
        return { participants: kept, skipped }
      }),
    roomMetadata: (room) =>
      Effect.map(call("ListRooms", () => client.listRooms([room])), (rooms) => Option.fromNullishOr(rooms.find((r) => r.name === room)?.metadata)),
    updateRoomMetadata: (room, metadata) => Effect.asVoid(call("UpdateRoomMetadata", () => client.updateRoomMetadata(room, metadata)))
  }
}

const makeReceiver = (apiKey: string, apiSecret: string) => {
  const receiver = new WebhookReceiver(apiKey, apiSecret)
  return (body: string, authorization: string | undefined): Effect.Effect<LiveKitWebhook, WebhookRejected> =>
    Effect.tryPromise({
      // An empty header would make the SDK skip nothing but fail with its own message; say it plainly.
      try: () =>
        authorization === undefined || authorization === "" ? Promise.reject(new Error("no Authorization header")) : receiver.receive(body, authorization),
      catch: (error) => new WebhookRejected({ detail: errorMessage(error) })
    }).pipe(Effect.map((event) => ({
      id: event.id,
      event: event.event,
      createdAt: Number(event.createdAt) * 1000,
      room: event.room === undefined ? Option.none() : toRoom(event.room),
      participant: event.participant === undefined ? Option.none() : toParticipant(event.participant),
      track: event.track === undefined ? Option.none() : Option.some(toTrack(event.track))
    })))
}

/** The LiveKit server (livekit-server-sdk): its RoomService API for room sync, and webhook verification. */
export class LiveKit extends Context.Service<LiveKit, LiveKitService>()("auralink/LiveKit") {
  static readonly layer = Layer.effect(
    LiveKit,
    Effect.gen(function*() {
      const { webrtcServer } = yield* AppConfig
      const credentials = Option.all({ apiKey: webrtcServer.apiKey, apiSecret: webrtcServer.apiSecret }).pipe(
        Option.map(({ apiKey, apiSecret }) => ({ apiKey: Redacted.value(apiKey), apiSecret: Redacted.value(apiSecret) }))
      )
      const timeout = Duration.millis(webrtcServer.requestTimeoutMs)
      const api = Option.flatMap(webrtcServer.url, (url) => Option.map(credentials, (c) => makeApi(url, c.apiKey, c.apiSecret, timeout)))
      const disabledReason = Option.isSome(api)
        ? Option.none<string>()
        : Option.some(Option.isNone(webrtcServer.url) ? "WEBRTC_SERVER_URL is not set" : "WEBRTC_API_KEY and WEBRTC_API_SECRET are both needed")
      if (Option.isSome(api)) {
        yield* Effect.logInfo(`LiveKit at ${api.value.url}: room sync on`)
        const probe = api.value.roomMetadata
        yield* (yield* Health).register({ name: "webrtc_server", critical: false, check: probe(PROBE_ROOM) })
      } else {
        yield* Effect.logInfo(`room sync off: ${Option.getOrElse(disabledReason, () => "")}`)
      }
      return {
        api,
        disabledReason,
        receiveWebhook: Option.map(credentials, (c) => makeReceiver(c.apiKey, c.apiSecret))
      }
    })
  )
}
