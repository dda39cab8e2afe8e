import { Effect, Option, Stream } from "effect"
import { RoomStore } from "../../layers/RoomStore.ts"
import type { RoomName } from "../../schemas/ids.ts"

/** Room events as any instance applies them (subscribed before this returns), of one room or all. */
export const watchRooms = Effect.fn("rooms.watch")(function*(room: Option.Option<RoomName>) {
  const events = yield* (yield* RoomStore).events
  return Option.match(room, { onNone: () => events, onSome: (name) => Stream.filter(events, (e) => e.room === name) })
})
