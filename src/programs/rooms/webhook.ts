import { Effect, Option, Schema } from "effect"
import { AppConfig } from "../../layers/Config.ts"
import { LiveKit, type LiveKitWebhook, WebhookRejected } from "../../layers/LiveKit.ts"
import type { ParticipantStore } from "../../layers/ParticipantStore.ts"
import { RoomMetrics, type WebhookResult } from "../../layers/rooms/metrics.ts"
import { RoomStore } from "../../layers/RoomStore.ts"
import type { StateStoreError } from "../../layers/StateStore.ts"
import type { RoomName } from "../../schemas/ids.ts"
import type { ParticipantRecord, RoomEvent, RoomEventType, RoomRecord } from "../../schemas/rooms.ts"
import { applyChanges } from "./apply.ts"
import type { Change } from "./reconcile.ts"

/**
 * LiveKit stamps events in whole seconds: a webhook counts as the end of its second (so it wins
 * over a sync that polled earlier in that second), and a removal in the same second as an addition
 * wins over it whatever order they arrive in (a leave and re-join within one second is put right by
 * the next sync).
 */
const stampOf = (webhook: LiveKitWebhook, removal: boolean) => webhook.createdAt + 999 + (removal ? 0.5 : 0)

const REMOVALS: ReadonlySet<string> = new Set(["room_finished", "participant_left", "participant_connection_aborted", "track_unpublished"])

const event = (type: RoomEventType, room: RoomName, at: number, extra: Partial<Pick<RoomEvent, "identity" | "trackSid">> = {}): RoomEvent => ({
  type,
  room,
  source: "webhook",
  at,
  ...extra
})

const activeRecord = (webhook: LiveKitWebhook, room: NonNullable<Option.Option.Value<LiveKitWebhook["room"]>>): RoomRecord => ({
  name: room.name,
  sid: room.sid,
  state: "active",
  metadata: room.metadata,
  createdAt: room.createdAt,
  finishedAt: null,
  updatedAt: webhook.createdAt
})

/** The store changes one verified webhook asks for (none for events this service does not keep). */
const changesOf = (webhook: LiveKitWebhook) =>
  Effect.gen(function*() {
    const store = yield* RoomStore
    if (Option.isNone(webhook.room)) return []
    const room = webhook.room.value
    const at = webhook.createdAt
    const kept = yield* store.room(room.name)
    // A participant or track event for a room not kept as active also starts it.
    const starts = (): Array<Change> =>
      Option.isSome(kept) && kept.value.state === "active"
        ? []
        : [{ kind: "room", record: activeRecord(webhook, room), events: [event("room_started", room.name, at)] }]
    const withParticipant = (f: (p: ParticipantRecord) => Array<Change>): Array<Change> => Option.match(webhook.participant, { onNone: () => [], onSome: f })
    switch (webhook.event) {
      case "room_started":
        return starts()
      case "room_finished": {
        const participants = yield* store.participants(room.name)
        const finished: RoomRecord = { ...activeRecord(webhook, room), state: "finished", finishedAt: at }
        return [
          { kind: "room", record: finished, events: [event("room_finished", room.name, at)] } satisfies Change,
          ...participants.map((p): Change => ({
            kind: "leave",
            room: room.name,
            identity: p.identity,
            events: [event("participant_left", room.name, at, { identity: p.identity })]
          }))
        ]
      }
      case "participant_joined":
        return withParticipant((
          p
        ) => [...starts(), { kind: "participant", room: room.name, record: p, events: [event("participant_joined", room.name, at, { identity: p.identity })] }])
      case "participant_left":
      case "participant_connection_aborted":
        return withParticipant((
          p
        ) => [{ kind: "leave", room: room.name, identity: p.identity, events: [event("participant_left", room.name, at, { identity: p.identity })] }])
      case "track_published":
      case "track_unpublished": {
        if (Option.isNone(webhook.track)) return []
        const track = webhook.track.value
        const published = webhook.event === "track_published"
        return withParticipant((p) => {
          const others = p.tracks.filter((t) => t.sid !== track.sid)
          const record = { ...p, tracks: published ? [...others, track] : others }
          const type = published ? "track_published" : "track_unpublished"
          return [...starts(), {
            kind: "participant",
            room: room.name,
            record,
            events: [event(type, room.name, at, { identity: p.identity, trackSid: track.sid })]
          }]
        })
      }
      default:
        return []
    }
  })

/** Webhooks cannot be verified here: no key/secret configured. */
export class WebhooksOff extends Schema.TaggedError<WebhooksOff>()("WebhooksOff", { detail: Schema.String }) {}

/**
 * A LiveKit webhook delivery: verified (signed JWT with the body's SHA-256; else WebhookRejected
 * and nothing changes), applied at once unless its id was seen before (LiveKit retries) or a later
 * change of the same room or participant is already kept (deliveries come out of order).
 */
export const receiveWebhook = Effect.fn("rooms.webhook")(function*(body: string, authorization: string | undefined) {
  const livekit = yield* LiveKit
  const store = yield* RoomStore
  const metrics = yield* RoomMetrics
  const { rooms: settings } = yield* AppConfig
  if (Option.isNone(livekit.receiveWebhook)) {
    return yield* Effect.fail(new WebhooksOff({ detail: "LiveKit webhooks are off: WEBRTC_API_KEY and WEBRTC_API_SECRET are not both set" }))
  }
  const webhook = yield* livekit.receiveWebhook.value(body, authorization).pipe(
    Effect.tapError(() => metrics.webhook("unverified", "rejected"))
  )
  const result = yield* Effect.gen(function*(): Effect.fn.Return<WebhookResult, StateStoreError, RoomStore | RoomMetrics | ParticipantStore> {
    if (webhook.id !== "" && !(yield* store.firstDelivery(webhook.id, settings.webhookDedupMs))) return "duplicate"
    const changes = yield* changesOf(webhook)
    if (changes.length === 0) return "ignored"
    const applied = yield* applyChanges(changes, stampOf(webhook, REMOVALS.has(webhook.event)))
    return applied === 0 ? "stale" : "applied"
  }).pipe(
    // Not applied: let LiveKit's retry of the same id be applied.
    Effect.tapError(() =>
      Effect.andThen(metrics.webhook(webhook.event, "failed"), webhook.id === "" ? Effect.void : Effect.ignore(store.forgetWebhook(webhook.id)))
    )
  )
  yield* metrics.webhook(webhook.event, result)
  return { event: webhook.event, id: webhook.id, result }
})

export { WebhookRejected }
