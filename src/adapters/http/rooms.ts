import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import type { AuraIdResolver } from "../../layers/AuraIdResolver.ts"
import type { RoomStore } from "../../layers/RoomStore.ts"
import { StateStoreError } from "../../layers/StateStore.ts"
import { getRoom, listRooms } from "../../programs/rooms/read.ts"
import { Api } from "../../schemas/api.ts"
import { serviceUnavailable } from "../../schemas/unavailable.ts"
import { capturedServices, principalRunner } from "./captured.ts"

type Services = RoomStore | AuraIdResolver

/** The state store down: 503 with Retry-After, as for the other reads that need it. */
const storeDown = <A, E, R>(effect: Effect.Effect<A, E | StateStoreError, R>) =>
  Effect.catchIf(
    effect,
    (e): e is StateStoreError => e instanceof StateStoreError,
    () => Effect.fail(serviceUnavailable("room state is unavailable (state store)"))
  )

export const RoomsGroup = HttpApiBuilder.group(
  Api,
  "rooms",
  Effect.fn(function*(handlers) {
    const run = principalRunner<Services>(yield* capturedServices<Services>())
    return handlers.handleAll({
      list: () => run(() => listRooms().pipe(storeDown)),
      get: ({ params }) => run(() => getRoom(params.name).pipe(storeDown))
    })
  })
)
