import { Clock, Effect, Option } from "effect"
import { AppConfig } from "../../layers/Config.ts"
import { ParticipantStore, type StoredParticipant } from "../../layers/ParticipantStore.ts"
import type { ParticipantIdentity } from "../../schemas/ids.ts"
import { participantNotFound, type ParticipantState, type Presence } from "../../schemas/participants.ts"

/** The latest of the times present. */
const latest = (times: ReadonlyArray<Option.Option<string>>): Option.Option<string> => {
  const present = times.flatMap((time) => Option.isSome(time) ? [time.value] : [])
  return Option.fromUndefinedOr(
    present.reduce<string | undefined>((best, time) => best === undefined || Date.parse(time) > Date.parse(best) ? time : best, undefined)
  )
}

/**
 * The presence as of `now`: the status last set (`active` while none was), or `offline` once the
 * participant was last heard from more than `timeoutMs` ago.
 */
const presenceOf = (stored: StoredParticipant, lastSeenAt: string, now: number, timeoutMs: number): Presence => {
  const setStatus = Option.match(stored.presence, { onNone: () => "active" as const, onSome: (p) => p.setStatus })
  return {
    status: now - Date.parse(lastSeenAt) > timeoutMs ? "offline" : setStatus,
    setStatus,
    updatedAt: Option.match(stored.presence, { onNone: () => lastSeenAt, onSome: (p) => p.updatedAt }),
    lastSeenAt
  }
}

/** A known participant's state: heard from, so with a presence. */
export type KnownParticipant = ParticipantState & { readonly presence: Presence }

/** The aggregate state as of `now`; None when nothing is stored of the identity. */
export const stateOf = (identity: ParticipantIdentity, stored: StoredParticipant, now: number, timeoutMs: number): Option.Option<KnownParticipant> => {
  const changed = latest([stored.updatedAt, Option.map(stored.presence, (p) => p.updatedAt), Option.map(stored.latestQos, (q) => q.timestamp)])
  // Every write stores lastSeenAt with it; the other times stand in should one write have half failed.
  return Option.map(latest([stored.lastSeenAt, changed]), (lastSeenAt) => ({
    identity,
    capabilities: Option.getOrNull(stored.capabilities),
    qos: Option.getOrNull(stored.latestQos),
    presence: presenceOf(stored, lastSeenAt, now, timeoutMs),
    updatedAt: Option.getOrElse(changed, () => lastSeenAt)
  }))
}

/** A participant's state now (presence against the Effect Clock); 404 when nothing is known of it. No access check: callers decide. */
export const readParticipant = Effect.fn("participants.read")(function*(identity: ParticipantIdentity) {
  const stored = yield* (yield* ParticipantStore).read(identity)
  const { participants } = yield* AppConfig
  const now = yield* Clock.currentTimeMillis
  const state = stateOf(identity, stored, now, participants.presenceTimeoutMs)
  if (Option.isNone(state)) return yield* participantNotFound(identity)
  return state.value
})
