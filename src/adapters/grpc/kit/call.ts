import { type Deadline, Metadata, status } from "@grpc/grpc-js"
import { Duration, Effect, Option } from "effect"
import { AuthMetrics } from "../../../layers/auth/metrics.ts"
import { AuthStore } from "../../../layers/AuthStore.ts"
import { type Decision, type EndpointClass, type RateLimiter, rateLimitHeaders } from "../../../layers/RateLimiter.ts"
import { TokenSigner } from "../../../layers/Tokens.ts"
import { authenticate } from "../../../programs/auth/authenticate.ts"
import { countBadToken } from "../../../programs/auth/bad-tokens.ts"
import { checkRateLimit } from "../../../programs/rate-limit.ts"
import type { Principal } from "../../../schemas/auth.ts"
import { GrpcFailure, invalid } from "./failure.ts"
import { isMalformed } from "./request.ts"

/** What every call needs: token verification and the rate limiter. */
export type CallServices = TokenSigner | AuthStore | AuthMetrics | RateLimiter

/** What the kit needs of a call (grpc-js does not export its ServerSurfaceCall). */
export interface IncomingCall {
  readonly request: unknown
  readonly metadata: Metadata
  readonly getDeadline: () => Deadline
  readonly getPeer: () => string
}

/** The token of a single `authorization: Bearer <token>` entry; "" otherwise (rejected like any bad token). */
const bearerToken = (metadata: Metadata): string => {
  const values = metadata.get("authorization")
  const [value] = values
  if (values.length !== 1 || typeof value !== "string") return ""
  return /^Bearer +([^\s]+)\s*$/i.exec(value)?.[1] ?? ""
}

const unauthenticated = new GrpcFailure({ code: status.UNAUTHENTICATED, details: "Invalid or expired access token" })

/** The client IP of a grpc-js peer (`ipv4:1.2.3.4:5678`, `ipv6:[::1]:5678`). */
const peerIp = (peer: string) => peer.replace(/^ipv[46]:/, "").replace(/^\[([^\]]*)\]:\d+$/, "$1").replace(/^([^:]*):\d+$/, "$1")

/** RESOURCE_EXHAUSTED with the decision's RateLimit-* headers as metadata. */
const exhausted = (details: string, decision: Decision) => {
  const metadata = new Metadata()
  for (const [key, value] of Object.entries(rateLimitHeaders(decision))) metadata.set(key, value)
  return new GrpcFailure({ code: status.RESOURCE_EXHAUSTED, details, metadata })
}

/** As over REST: a rejected token counts against the peer's IP budget, and past it the call is RESOURCE_EXHAUSTED. */
const authenticateCall = (call: IncomingCall) =>
  authenticate(bearerToken(call.metadata)).pipe(Effect.catchTag("InvalidToken", () =>
    Effect.flatMap(countBadToken(peerIp(call.getPeer())), (decision) => {
      if (Option.isNone(decision) || decision.value.allowed) return Effect.fail(unauthenticated)
      return Effect.fail(exhausted(`Too many requests with bad tokens; retry after ${decision.value.retryAfterSeconds} s`, decision.value))
    })))

/** The per-user rate limit of `endpointClass` (a limiter outage lets the call through, as over REST). */
const rateLimit = (endpointClass: EndpointClass, userId: string) =>
  Effect.flatMap(checkRateLimit(endpointClass, userId), (decision) =>
    Option.isNone(decision) || decision.value.allowed
      ? Effect.void
      : Effect.fail(exhausted(`Rate limit of ${decision.value.limit} requests exceeded; retry after ${decision.value.retryAfterSeconds} s`, decision.value)))

const deadlineMillis = (deadline: Deadline): number => deadline instanceof Date ? deadline.getTime() : deadline
const deadlineExceeded = new GrpcFailure({ code: status.DEADLINE_EXCEEDED, details: "Deadline exceeded" })

/** Runs `effect` until the call's deadline (if it has one), then interrupts it: DEADLINE_EXCEEDED. */
const untilDeadline = (deadline: Deadline) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | GrpcFailure, R> => {
  const at = deadlineMillis(deadline)
  if (!Number.isFinite(at)) return effect
  return Effect.suspend(() => {
    const left = at - Date.now()
    if (left <= 0) return Effect.fail(deadlineExceeded)
    return Effect.timeoutOrElse(effect, { duration: Duration.millis(left), orElse: () => Effect.fail(deadlineExceeded) })
  })
}

/** How the kit guards every call of one service. */
export interface CallGuard {
  /** Fully qualified service name, for the span (`grpc <service>/<method>`). */
  readonly service: string
  /** The per-user rate-limit class each call counts against. */
  readonly rateLimit: EndpointClass
}

/** Authentication, then the rate limit, then the call's work, all within the deadline; scoped to the call. */
export const guarded = <A, E, R>(
  guard: CallGuard,
  method: string,
  call: IncomingCall,
  work: (principal: Principal) => Effect.Effect<A, E, R>
) =>
  Effect.gen(function*() {
    const principal = yield* authenticateCall(call)
    yield* rateLimit(guard.rateLimit, principal.userId)
    if (isMalformed(call.request)) return yield* invalid("request", `not a valid ${method} request message`)
    return yield* work(principal)
  }).pipe(
    untilDeadline(call.getDeadline()),
    Effect.scoped,
    Effect.withSpan(`grpc ${guard.service}/${method}`)
  )
