import { HttpApiEndpoint, HttpApiGroup, OpenApi } from "effect/http-api"
import { Authentication } from "./auth.ts"
import { RoomName } from "./ids.ts"
import { UserRateLimit } from "./rate-limit.ts"
import { RoomDetail, RoomList, RoomNotFound } from "./rooms.ts"

/** LiveKit rooms as this service keeps them: any authenticated device may read them. */
export class RoomsApi extends HttpApiGroup.make("rooms")
  .add(
    HttpApiEndpoint.get("list", "/api/rooms", { success: RoomList }),
    HttpApiEndpoint.get("get", "/api/rooms/:name", { params: { name: RoomName }, success: RoomDetail, error: RoomNotFound })
  )
  .middleware(UserRateLimit)
  .middleware(Authentication)
  .annotateMerge(OpenApi.annotations({ title: "Rooms", description: "LiveKit rooms, their participants and this service's media state in them" }))
{}
