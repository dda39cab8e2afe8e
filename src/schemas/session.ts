import { Schema } from "effect"
import { HttpApiError } from "effect/http-api"
import { DeviceId, ParticipantIdentity, RoomName, SessionId } from "./ids.ts"
import { isStorable, isStorableText, StorableText } from "./text.ts"

// ---- states and the state machine -----------------------------------------------------

export const SessionState = Schema.Literals(["pending", "active", "completed", "error", "expired"])
export type SessionState = typeof SessionState.Type

export const sessionStates: ReadonlyArray<SessionState> = SessionState.literals

/**
 * Allowed moves: pending -> active -> completed | error | expired, plus pending -> expired | error,
 * and pending -> completed (the client cancels before any media; the event's reason says so).
 */
export const transitions: Readonly<Record<SessionState, ReadonlyArray<SessionState>>> = {
  pending: ["active", "completed", "expired", "error"],
  active: ["completed", "error", "expired"],
  completed: [],
  error: [],
  expired: []
}

export const canTransition = (from: SessionState, to: SessionState): boolean => transitions[from].includes(to)

/** The states a session may be in to move to `to`. */
export const sourcesOf = (to: SessionState): ReadonlyArray<SessionState> => sessionStates.filter((from) => canTransition(from, to))

export const isTerminal = (state: SessionState): boolean => transitions[state].length === 0

/** Config and context may change only while the session is open. */
export const openStates: ReadonlyArray<SessionState> = ["pending", "active"]

// ---- config and context ----------------------------------------------------------------

export const IDLE_TIMEOUT_BOUNDS = { minimum: 10, maximum: 86_400 } as const

/** Checked on the record, not as its key schema: a key failing that is dropped silently, not refused. */
const hasAsrKeys = Schema.makeFilter<Readonly<Record<string, unknown>>>(
  (record) => Object.keys(record).every((key) => key.length <= 64 && isStorable(key)),
  {
    expected: "keys of at most 64 characters without NUL or unpaired surrogates",
    message: "keys must be at most 64 characters, without NUL (U+0000) or unpaired surrogates"
  }
)

const fields = {
  sampleRate: Schema.Literals([16000, 48000]),
  channels: Schema.Literal(1),
  encoding: Schema.Literals(["s16le", "opus"]),
  /** BCP 47-ish: a 2-3 letter language and optional subtags (`en`, `en-US`, `zh-Hant-TW`). */
  language: Schema.String.check(Schema.isPattern(/^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}$/)),
  /** Free-form options passed to the ASR gateway. */
  asr: Schema.Record(Schema.String, Schema.Union([Schema.String.check(Schema.isMaxLength(1024), isStorableText()), Schema.Finite, Schema.Boolean]))
    .check(Schema.isMaxProperties(32), hasAsrKeys),
  aic: Schema.Boolean,
  idleTimeoutSeconds: Schema.Int.check(Schema.isBetween(IDLE_TIMEOUT_BOUNDS)),
  /** The LiveKit room this session's media belongs to (its media state is published there). */
  room: RoomName,
  /** The participant (LiveKit identity) whose media this is: its QoS is measured from this session. */
  participantIdentity: ParticipantIdentity
}

export const SessionConfig = Schema.Struct({
  ...fields,
  room: Schema.optionalKey(fields.room),
  participantIdentity: Schema.optionalKey(fields.participantIdentity)
})
export type SessionConfig = typeof SessionConfig.Type

/** Start body and PATCH body: any subset of the config; missing fields keep their default / current value. */
export const SessionConfigPatch = Schema.Struct({
  sampleRate: Schema.optionalKey(fields.sampleRate),
  channels: Schema.optionalKey(fields.channels),
  encoding: Schema.optionalKey(fields.encoding),
  language: Schema.optionalKey(fields.language),
  asr: Schema.optionalKey(fields.asr),
  aic: Schema.optionalKey(fields.aic),
  idleTimeoutSeconds: Schema.optionalKey(fields.idleTimeoutSeconds),
  room: Schema.optionalKey(fields.room),
  participantIdentity: Schema.optionalKey(fields.participantIdentity)
})
export type SessionConfigPatch = typeof SessionConfigPatch.Type

export const ContextRole = Schema.Literals(["user", "assistant", "system"])

export const ContextEntry = Schema.Struct({
  role: ContextRole,
  text: Schema.String.check(Schema.isMaxLength(8192)),
  /** ISO 8601 time. */
  at: Schema.String
})
export type ContextEntry = typeof ContextEntry.Type

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):(\d{2}))$/

/** An RFC 3339 time that exists: the pattern alone let `9999-99-99T99:99Z` through. */
const isRealTimestamp = (text: string): boolean => {
  const m = TIMESTAMP.exec(text)
  if (m === null) return false
  const [year, month, day, hour, minute, second, offsetHours, offsetMinutes] = m.slice(1).map((part) => Number(part ?? 0))
  if (year === undefined || month === undefined || day === undefined) return false
  const date = new Date(Date.UTC(year, month - 1, day))
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day &&
    (hour ?? 0) < 24 && (minute ?? 0) < 60 && (second ?? 0) < 60 && (offsetHours ?? 0) < 24 && (offsetMinutes ?? 0) < 60
}

export const AppendContext = Schema.Struct({
  role: ContextRole,
  text: StorableText.check(Schema.isMaxLength(8192)),
  /** When it was said (RFC 3339, e.g. `2025-06-01T08:30:00Z`); defaults to now. */
  at: Schema.optionalKey(Schema.String.check(Schema.makeFilter(isRealTimestamp, {
    expected: "an RFC 3339 date-time that exists (e.g. 2025-06-01T08:30:00Z)",
    message: "must be an existing RFC 3339 date-time such as 2025-06-01T08:30:00Z"
  })))
})
export type AppendContext = typeof AppendContext.Type

// ---- the session ------------------------------------------------------------------------

const Timestamp = Schema.String
export const Session = Schema.Struct({
  id: SessionId,
  userId: Schema.String,
  deviceId: DeviceId,
  state: SessionState,
  config: SessionConfig,
  context: Schema.Array(ContextEntry),
  createdAt: Timestamp,
  startedAt: Schema.NullOr(Timestamp),
  endedAt: Schema.NullOr(Timestamp),
  /** When the sweeper expires it if nothing happens (last activity + idle timeout). */
  expiresAt: Timestamp,
  lastActivityAt: Timestamp,
  error: Schema.NullOr(Schema.String)
})
export type Session = typeof Session.Type

export const SessionPage = Schema.Struct({
  sessions: Schema.Array(Session),
  /** Opaque; pass as `cursor` for the next page. Absent on the last page. */
  nextCursor: Schema.optionalKey(Schema.String)
})
export type SessionPage = typeof SessionPage.Type

export const ListQuery = Schema.Struct({
  state: Schema.optionalKey(SessionState),
  limit: Schema.optionalKey(Schema.NumberFromString.check(Schema.isInt(), Schema.isBetween({ minimum: 1, maximum: 100 }))),
  cursor: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(256))),
  /** Operators only: another user's sessions (all users when absent). */
  userId: Schema.optionalKey(StorableText.check(Schema.isMinLength(1), Schema.isMaxLength(256)))
})
export type ListQuery = typeof ListQuery.Type

// ---- errors (problems; the gRPC adapter maps them by _tag) -------------------------------

export class SessionNotFound extends HttpApiError.Problem<SessionNotFound>()("SessionNotFound", {
  type: "about:blank",
  status: 404,
  title: "Not Found"
}, { detail: Schema.String }) {}

export class SessionForbidden extends HttpApiError.Problem<SessionForbidden>()("SessionForbidden", {
  type: "about:blank",
  status: 403,
  title: "Forbidden"
}, { detail: Schema.String }) {}

/** A move the state machine does not allow; nothing was changed. */
export class IllegalTransition extends HttpApiError.Problem<IllegalTransition>()("IllegalTransition", {
  type: "urn:auralink:problem:illegal-transition",
  status: 409,
  title: "Illegal session state transition"
}, { detail: Schema.String, from: SessionState, to: SessionState }) {}

/** Config or context changes on a session that has ended. */
export class SessionClosed extends HttpApiError.Problem<SessionClosed>()("SessionClosed", {
  type: "urn:auralink:problem:session-closed",
  status: 409,
  title: "Session has ended"
}, { detail: Schema.String, state: SessionState }) {}

export class InvalidCursor extends HttpApiError.Problem<InvalidCursor>()("InvalidCursor", {
  type: "urn:auralink:problem:invalid-cursor",
  status: 400,
  title: "Bad Request"
}, { detail: Schema.String }) {}

export const sessionNotFound = (id: string) => new SessionNotFound({ detail: `No session ${id}` })
export const sessionForbidden = () => new SessionForbidden({ detail: "The session belongs to another user" })
export const illegalTransition = (from: SessionState, to: SessionState) => new IllegalTransition({ detail: `A ${from} session cannot become ${to}`, from, to })
export const sessionClosed = (state: SessionState) => new SessionClosed({ detail: `The session is ${state}; only pending or active sessions change`, state })
