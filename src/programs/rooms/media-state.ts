import { Clock, Duration, Effect, Layer, Option, Schedule } from "effect"
import { AiCore } from "../../layers/AiCore.ts"
import { AppConfig } from "../../layers/Config.ts"
import { Instance } from "../../layers/Instance.ts"
import { LiveKit, type LiveKitApi } from "../../layers/LiveKit.ts"
import { RoomStore } from "../../layers/RoomStore.ts"
import type { RoomName } from "../../schemas/ids.ts"
import type { MediaState } from "../../schemas/rooms.ts"
import { type CarriedSession, carriedSessions } from "./carried-sessions.ts"
import { bandwidthKbps, liveProducers, qualityLevelOf } from "./media-figures.ts"
import { publishedValue, withMediaState } from "./livekit-metadata.ts"
import { makeQosSampler } from "./qos-sampler.ts"
import { combineMediaStates } from "./read.ts"

/**
 * This instance's contribution to `room`'s media state. AIC counts as enabled when a session asks
 * for it (`config.aic`) and the pipeline can run it (ENABLE_AIC, an AI Core, a forward target).
 */
export const roomMediaState = (room: RoomName, carried: ReadonlyArray<CarriedSession>, aicAvailable: boolean, now: number): MediaState => {
  const producers = carried.flatMap((c) => liveProducers(c.stats))
  return {
    conferenceId: room,
    activeStreams: producers.length,
    totalBandwidthKbps: Math.round(bandwidthKbps(producers) * 10) / 10,
    qualityLevel: qualityLevelOf(producers),
    aicEnabled: aicAvailable && carried.some((c) => c.session.config.aic),
    // The AIC pipeline keeps byte totals per process only (AicMetrics), none per session: 1, "nothing compressed", until it does.
    compressionRatio: 1,
    sessions: carried.length,
    updatedAt: new Date(now).toISOString()
  }
}

/** The sessions naming a room, by room. */
const byRoom = (carried: ReadonlyArray<CarriedSession>): ReadonlyMap<RoomName, ReadonlyArray<CarriedSession>> => {
  const rooms = new Map<RoomName, Array<CarriedSession>>()
  for (const c of carried) {
    const room = c.session.config.room
    if (room !== undefined) rooms.set(room, [...(rooms.get(room) ?? []), c])
  }
  return rooms
}

/**
 * Writes every instance's combined state of `room` into its LiveKit metadata under `auralink`, other
 * keys kept, when it differs from what this instance wrote last (`written`, updated here). A room
 * LiveKit does not have is left for the next interval.
 */
const publishToLiveKit = (api: LiveKitApi, room: RoomName, written: Map<RoomName, string>) =>
  Effect.gen(function*() {
    const combined = combineMediaStates(room, yield* (yield* RoomStore).mediaStates(room))
    const value = publishedValue(combined)
    if (written.get(room) === value) return
    const current = yield* api.roomMetadata(room)
    if (Option.isNone(current)) return yield* Effect.logDebug(`media state: LiveKit has no room ${JSON.stringify(room)} yet`)
    const next = withMediaState(current.value, combined)
    if (Option.isSome(next) && next.value !== current.value) yield* api.updateRoomMetadata(room, next.value)
    written.set(room, value)
  })

/**
 * The loop's state between intervals: the rooms this instance wrote a media state for, the values it
 * last wrote to LiveKit, and the LiveKit rooms whose last write failed (warned once per outage).
 */
const makeMediaStateTick = Effect.gen(function*() {
  const { features, aic } = yield* AppConfig
  const ai = yield* AiCore
  const { id: instance } = yield* Instance
  const store = yield* RoomStore
  const livekit = yield* LiveKit
  const aicAvailable = features.aic && ai.kind === "client" && Option.isSome(aic.forwardTarget)
  let rooms: ReadonlySet<RoomName> = new Set()
  const written = new Map<RoomName, string>()
  const failing = new Set<RoomName>()

  const publish = (api: LiveKitApi, room: RoomName) =>
    publishToLiveKit(api, room, written).pipe(
      Effect.andThen(Effect.sync(() => failing.delete(room))),
      Effect.catch((error) => {
        const first = !failing.has(room)
        failing.add(room)
        const message = `media state not written to LiveKit room ${JSON.stringify(room)}: ${error.message}`
        return first ? Effect.logWarning(message) : Effect.logDebug(message)
      })
    )

  const tick = (carried: ReadonlyArray<CarriedSession>) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const here = byRoom(carried)
      yield* Effect.forEach(here, ([room, inRoom]) => store.putMediaState(room, instance, roomMediaState(room, inRoom, aicAvailable, now)), {
        concurrency: 16,
        discard: true
      })
      const left = [...rooms].filter((room) => !here.has(room))
      yield* Effect.forEach(left, (room) => store.putMediaState(room, instance, null), { concurrency: 16, discard: true })
      rooms = new Set(here.keys())
      if (Option.isNone(livekit.api)) return
      const api = livekit.api.value
      yield* Effect.forEach([...here.keys(), ...left], (room) => publish(api, room), { concurrency: 8, discard: true })
      for (const room of left) {
        written.delete(room)
        failing.delete(room)
      }
    })

  /** This instance's media leaves every room it was in (at shutdown). */
  const leaveAll = Effect.suspend(() => Effect.forEach(rooms, (room) => Effect.ignore(store.putMediaState(room, instance, null)), { discard: true }))
  return { tick, leaveAll }
})

/**
 * Every QOS_SAMPLE_INTERVAL_MS, from one read of the mediasoup stats of this instance's open
 * sessions: a measured QoS sample per session that names its participant; this instance's media
 * state of each room the sessions name, into the room store (and out of the rooms it no longer has
 * sessions in); then, with LiveKit configured, all instances' combined state into each such LiveKit
 * room's metadata. A failed run is logged and the next one follows; at shutdown this instance's
 * states are taken out.
 */
export const RoomMediaStateLive = Layer.effectDiscard(Effect.gen(function*() {
  const { participants } = yield* AppConfig
  const { tick, leaveAll } = yield* makeMediaStateTick
  const sampleQos = makeQosSampler()
  yield* Effect.addFinalizer(() => leaveAll)
  yield* carriedSessions.pipe(
    Effect.flatMap((carried) => Effect.andThen(sampleQos(carried), tick(carried))),
    Effect.catchCause((cause) => Effect.logWarning("room media state failed", cause)),
    // At a fixed rate (a run's own time not added to the interval); one that overruns is followed at once, not piled up.
    Effect.repeat(Schedule.fixed(Duration.millis(participants.qosSampleIntervalMs))),
    Effect.forkScoped
  )
}))
