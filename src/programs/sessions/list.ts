import { Effect, Option, Schema } from "effect"
import { Sessions } from "../../layers/SessionStore.ts"
import type { Principal } from "../../schemas/auth.ts"
import { InvalidCursor, type ListQuery, type Session, sessionForbidden, type SessionPage } from "../../schemas/session.ts"
import { isOperator } from "./access.ts"

export const DEFAULT_PAGE_SIZE = 20

/** The cursor is the (created_at, id) of the last session of a page, as base64url JSON. */
const CursorJson = Schema.fromJsonString(Schema.Tuple([
  Schema.String.check(Schema.isPattern(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)),
  Schema.String.check(Schema.isUUID())
]))
const decodeCursor = Schema.decodeUnknownOption(CursorJson)

export const encodeCursor = (session: Session): string => Buffer.from(JSON.stringify([session.createdAt, session.id])).toString("base64url")

const parseCursor = (cursor: string) => {
  const position = /^[A-Za-z0-9_-]+$/.test(cursor) ? decodeCursor(Buffer.from(cursor, "base64url").toString("utf8")) : Option.none()
  return Option.match(Option.filter(position, ([at]) => !Number.isNaN(Date.parse(at))), {
    onNone: () => Effect.fail(new InvalidCursor({ detail: "The cursor is not one this API returned" })),
    onSome: ([at, id]) => Effect.succeed({ createdAt: new Date(at), id })
  })
}

/**
 * The principal's sessions, newest first, optionally of one state; `cursor` continues after the
 * previous page. Operators list every user's sessions (or `userId`'s); others only their own.
 */
export const listSessions = Effect.fn("sessions.list")(function*(principal: Principal, query: ListQuery) {
  const operator = isOperator(principal)
  if (query.userId !== undefined && query.userId !== principal.userId && !operator) return yield* sessionForbidden()
  const userId = query.userId ?? (operator ? undefined : principal.userId)
  const after = query.cursor === undefined ? Option.none() : Option.some(yield* parseCursor(query.cursor))
  const limit = query.limit ?? DEFAULT_PAGE_SIZE
  const rows = yield* (yield* Sessions).list({
    userId: Option.fromUndefinedOr(userId),
    state: Option.fromUndefinedOr(query.state),
    after,
    limit: limit + 1
  })
  const sessions = rows.slice(0, limit)
  const last = sessions.at(-1)
  const page: SessionPage = rows.length > limit && last !== undefined ? { sessions, nextCursor: encodeCursor(last) } : { sessions }
  return page
})
