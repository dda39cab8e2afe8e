import { status } from "@grpc/grpc-js"
import { Effect, Option, Schema } from "effect"
import type { AuraIdResolver } from "../../layers/AuraIdResolver.ts"
import type { RoomMetrics } from "../../layers/rooms/metrics.ts"
import type { RoomStore } from "../../layers/RoomStore.ts"
import { getRoom, listRooms } from "../../programs/rooms/read.ts"
import { watchRooms } from "../../programs/rooms/watch.ts"
import { RoomName } from "../../schemas/ids.ts"
import type { MediaState, RoomDetail, RoomEvent, RoomNotFound, RoomSummary, TrackRecord } from "../../schemas/rooms.ts"
import type { Statuses } from "./kit/failure.ts"
import { asRecord, decodeWith } from "./kit/request.ts"
import { serveGrpc } from "./kit/service.ts"

export const ROOM_SERVICE = "auralink.rooms.v1.RoomService"

const statuses: Statuses<RoomNotFound> = { RoomNotFound: status.NOT_FOUND }

const decodeName = (request: unknown) => decodeWith(RoomName, asRecord(request)["name"], "name")
const WatchRequest = Schema.Struct({ room: Schema.Union([Schema.Literal(""), RoomName]) })

const toProtoTrack = (t: TrackRecord) => ({ sid: t.sid, kind: t.kind, source: t.source, name: t.name, mimeType: t.mimeType, muted: t.muted })
const toProtoMedia = (m: MediaState) => ({ ...m })
const toProtoRoom = (room: RoomSummary) => ({ ...room, finishedAt: "", participants: [] })
const toProtoDetail = (room: RoomDetail) => ({
  ...room,
  finishedAt: room.finishedAt ?? "",
  participants: room.participants.map((p) => ({ ...p, tracks: p.tracks.map(toProtoTrack) })),
  ...(room.mediaState === null ? {} : { mediaState: toProtoMedia(room.mediaState) })
})
const toProtoEvent = (e: RoomEvent) => ({
  type: e.type,
  room: e.room,
  identity: e.identity ?? "",
  trackSid: e.trackSid ?? "",
  source: e.source,
  atMs: String(e.at)
})

/** `auralink.rooms.v1.RoomService`: the REST rooms reads and a stream of room events; any authenticated caller. */
export const RoomGrpcLive = serveGrpc<RoomNotFound, RoomStore | RoomMetrics | AuraIdResolver>(
  { service: ROOM_SERVICE, proto: "rooms.proto", rateLimit: "default", statuses },
  ({ serverStream, unary }) => ({
    ListRooms: unary("ListRooms", () => Effect.map(listRooms(), ({ rooms }) => ({ rooms: rooms.map(toProtoRoom) }))),
    GetRoom: unary("GetRoom", (request) => Effect.flatMap(decodeName(request), getRoom).pipe(Effect.map(toProtoDetail))),
    WatchRooms: serverStream(
      "WatchRooms",
      (request) => Effect.flatMap(decodeWith(WatchRequest, request, ""), ({ room }) => watchRooms(room === "" ? Option.none() : Option.some(room))),
      toProtoEvent
    )
  })
)
