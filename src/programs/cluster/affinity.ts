import { Effect, Option, Schema } from "effect"
import { randomBytes } from "node:crypto"
import { Cluster } from "../../layers/Cluster.ts"
import { ClusterMetrics } from "../../layers/cluster/metrics.ts"
import { AppConfig } from "../../layers/Config.ts"
import { StateStore } from "../../layers/StateStore.ts"
import { Sessions } from "../../layers/SessionStore.ts"
import type { SessionId } from "../../schemas/ids.ts"
import { bearerToken, verifyAccessToken } from "../auth/authenticate.ts"
import { checkRateLimit } from "../rate-limit.ts"

/** Where a request for a session's media must be served. */
export type Placement =
  | { readonly _tag: "Here" }
  | { readonly _tag: "Elsewhere"; readonly publicUrl: string }
  /** Its owner stopped heartbeating: its sessions end within INSTANCE_TTL_MS, so retry after that. */
  | { readonly _tag: "OwnerGone"; readonly retryAfterSeconds: number }

const here: Placement = { _tag: "Here" }

/**
 * Which instance serves requests for the session's media: here when this instance owns it (or
 * nothing is known: the handler answers 404 or 409), else its owner's URL, or "gone". A session
 * started here is answered from memory; others cost one indexed read and one state store read.
 */
export const placeSession = (id: SessionId) =>
  Effect.gen(function*() {
    const cluster = yield* Cluster
    const sessions = yield* Sessions
    if (!cluster.shared || sessions.isOpenHere(id)) return here
    const owner = yield* Effect.orElseSucceed(sessions.ownerOf(id), () => Option.none<string>())
    if (Option.isNone(owner) || owner.value === cluster.self.id) return here
    const metrics = yield* ClusterMetrics
    const record = yield* Effect.orElseSucceed(cluster.find(owner.value), () => Option.none())
    if (Option.isSome(record)) {
      yield* metrics.redirect("redirected")
      return { _tag: "Elsewhere", publicUrl: record.value.publicUrl } satisfies Placement
    }
    yield* metrics.redirect("owner_gone")
    const { cluster: settings } = yield* AppConfig
    return { _tag: "OwnerGone", retryAfterSeconds: Math.ceil(settings.instanceTtlMs / 1000) } satisfies Placement
  })

/**
 * A redirect ticket: `fetch` and browsers drop `Authorization` when a redirect crosses origins
 * (each instance is its own origin), so the redirecting instance keeps the header for
 * TICKET_TTL_MS under an unguessable id that the Location carries (REDIRECT_TICKET_PARAM), bound to
 * the method and path; the owner takes it back once and puts the header back on the request.
 */
export const REDIRECT_TICKET_PARAM = "auralink_redirect"
const TICKET_TTL_MS = 30_000
const Ticket = Schema.fromJsonString(Schema.Struct({ authorization: Schema.String, method: Schema.String, path: Schema.String }))
const tickets = StateStore.use((store) => Effect.succeed(store.namespace("cluster:redirect")))

/** Whose request budget a ticket comes out of: the user of a valid access token, else the client's address (share tokens, bad tokens). */
const payerOf = (authorization: string, clientIp: string) =>
  Effect.map(
    Effect.option(verifyAccessToken(Option.getOrElse(bearerToken(authorization), () => ""))),
    Option.match({ onNone: () => `ip:${clientIp}`, onSome: (principal) => principal.userId })
  )

/**
 * A ticket for a request that carried `authorization`, out of its sender's `default` request
 * budget (a client cannot fill the store with tickets); `Limited` with the decision once spent.
 */
export const mintTicket = (authorization: string, method: string, path: string, clientIp: string) =>
  Effect.gen(function*() {
    const decision = yield* checkRateLimit("default", yield* payerOf(authorization, clientIp))
    if (Option.isSome(decision) && !decision.value.allowed) return { _tag: "Limited", decision: decision.value } as const
    const id = randomBytes(18).toString("base64url")
    yield* (yield* tickets).set(id, Schema.encodeSync(Ticket)({ authorization, method, path }), { ttlMs: TICKET_TTL_MS })
    return { _tag: "Ticket", id } as const
  })

/** The Authorization header a ticket holds, if it exists, is unused and was made for this method and path. */
const redeemTicket = (id: string, method: string, path: string) =>
  Effect.gen(function*() {
    const store = yield* tickets
    const stored = yield* store.get(id)
    if (Option.isNone(stored)) return Option.none<string>()
    yield* store.del(id)
    return Option.flatMap(
      Schema.decodeUnknownOption(Ticket)(stored.value),
      (ticket) => ticket.method === method && ticket.path === path ? Option.some(ticket.authorization) : Option.none()
    )
  }).pipe(Effect.orElseSucceed(() => Option.none<string>()))

/**
 * The token a request authenticates with: the one it presents, else (a request redirected from
 * another instance, which lost its Authorization on the way) the one its ticket
 * (REDIRECT_TICKET_PARAM) holds; "" when neither.
 */
export const tokenOrTicket = (presented: string, method: string, url: string) =>
  Effect.gen(function*() {
    if (presented !== "") return presented
    const parsed = new URL(url, "http://x")
    const ticket = parsed.searchParams.get(REDIRECT_TICKET_PARAM)
    if (ticket === null) return ""
    const authorization = yield* redeemTicket(ticket, method, parsed.pathname)
    return Option.getOrElse(Option.flatMap(authorization, bearerToken), () => "")
  })
