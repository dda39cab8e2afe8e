import {
  type Deadline,
  Metadata,
  type sendUnaryData,
  type ServerErrorResponse,
  type ServerUnaryCall,
  type ServerWritableStream,
  status,
  type UntypedServiceImplementation
} from "@grpc/grpc-js"
import type { PackageDefinition, ServiceDefinition } from "@grpc/proto-loader"
import { Cause, Data, Duration, Effect, FiberSet, Layer, Option, type Scope, Schema, SchemaIssue, Stream } from "effect"
import type { SqlError } from "effect/sql/SqlError"
import { AuthMetrics } from "../../layers/auth/metrics.ts"
import { AuthStore } from "../../layers/AuthStore.ts"
import { AppConfig } from "../../layers/Config.ts"
import { loadProto } from "../../layers/grpc/proto.ts"
import { serviceError } from "../../layers/grpc/status.ts"
import { GrpcServer, GrpcServerError } from "../../layers/GrpcServer.ts"
import { RateLimiter, rateLimitHeaders } from "../../layers/RateLimiter.ts"
import { SessionEvents } from "../../layers/sessions/events.ts"
import { SessionMetrics } from "../../layers/sessions/metrics.ts"
import { Sessions } from "../../layers/SessionStore.ts"
import type { StateStoreError } from "../../layers/StateStore.ts"
import type { ServiceUnavailable } from "../../schemas/unavailable.ts"
import { TokenSigner } from "../../layers/Tokens.ts"
import type { Principal } from "../../schemas/auth.ts"
import type { LimitReached } from "../../schemas/limits.ts"
import {
  type IllegalTransition,
  type InvalidCursor,
  type ListQuery,
  type Session,
  type SessionClosed,
  SessionConfigPatch,
  type SessionForbidden,
  type SessionNotFound,
  SessionState
} from "../../schemas/session.ts"
import { authenticate } from "../auth/authenticate.ts"
import { countBadToken } from "../auth/bad-tokens.ts"
import { AuthServices } from "../auth/http.ts"
import { getSession } from "./get.ts"
import { SessionServices } from "./http.ts"
import { listSessions } from "./list.ts"
import { startSession } from "./start.ts"
import { stopSession } from "./stop.ts"
import { updateSessionConfig } from "./update-config.ts"
import { watchSession } from "./watch.ts"
import { SessionId } from "../../schemas/ids.ts"

export const SESSION_SERVICE = "auralink.session.v1.SessionService"

type Services = AppConfig | Sessions | SessionEvents | SessionMetrics | TokenSigner | AuthStore | AuthMetrics | RateLimiter

/** A failure already decided in gRPC terms (bad input, auth, rate limit, deadline). */
class GrpcFailure extends Data.TaggedError("GrpcFailure")<{
  readonly code: status
  readonly details: string
  readonly metadata?: Metadata
}> {}

type CallError =
  | GrpcFailure
  | SessionNotFound
  | SessionForbidden
  | IllegalTransition
  | SessionClosed
  | InvalidCursor
  | LimitReached
  | SqlError
  | StateStoreError
  | ServiceUnavailable

const invalid = (field: string, message: string) => new GrpcFailure({ code: status.INVALID_ARGUMENT, details: `${field}: ${message}` })
const INTERNAL = () => serviceError(status.INTERNAL, "Internal error")

/** The gRPC status of a program's error; infrastructure failures are INTERNAL with nothing of their cause. */
const toServiceError = (error: CallError): ServerErrorResponse => {
  switch (error._tag) {
    case "GrpcFailure":
      return Object.assign(serviceError(error.code, error.details), error.metadata === undefined ? {} : { metadata: error.metadata })
    case "SessionNotFound":
      return serviceError(status.NOT_FOUND, error.detail)
    case "SessionForbidden":
      return serviceError(status.PERMISSION_DENIED, error.detail)
    case "IllegalTransition":
    case "SessionClosed":
      return serviceError(status.FAILED_PRECONDITION, error.detail)
    case "InvalidCursor":
      return serviceError(status.INVALID_ARGUMENT, `cursor: ${error.detail}`)
    case "LimitReached":
      return serviceError(status.RESOURCE_EXHAUSTED, error.detail)
    case "ServiceUnavailable":
      return serviceError(status.UNAVAILABLE, error.detail)
    case "StateStoreError":
      // Redis down (e.g. Watch cannot subscribe): the client may retry; its own mistakes are not this.
      return error.reason === "Backend" ? serviceError(status.UNAVAILABLE, "The state store is unavailable; retry shortly") : INTERNAL()
    default:
      return INTERNAL()
  }
}

// ---- requests: proto-loader objects -> the programs' inputs ---------------------------------

/**
 * What a request that is not valid protobuf for its message type becomes. grpc-js would answer
 * such bytes INTERNAL itself; this way the handler runs (after auth) and answers INVALID_ARGUMENT.
 */
const MALFORMED: unique symbol = Symbol("auralink/grpc/malformed")
const isMalformed = (request: unknown): boolean => typeof request === "object" && request !== null && MALFORMED in request

/** `pkg` with `service`'s request deserializers made total (malformed bytes -> the MALFORMED marker). */
const tolerantRequests = (pkg: PackageDefinition, service: string): PackageDefinition => {
  const definition = pkg[service]
  // Messages and enums carry a `format`; services are plain method maps.
  if (definition === undefined || "format" in definition) return pkg
  const methods: ServiceDefinition = Object.fromEntries(Object.entries(definition).map(([name, m]) => [name, {
    ...m,
    requestDeserialize: (bytes: Buffer): object => {
      try {
        return m.requestDeserialize(bytes)
      } catch {
        return { [MALFORMED]: true }
      }
    }
  }]))
  return { ...pkg, [service]: methods }
}

const asRecord = (value: unknown): Record<string, unknown> =>
  typeof value === "object" && value !== null ? Object.fromEntries(Object.entries(value)) : {}

/** The first issue of a schema failure as "<path>: <message>", the path in proto field names. */
const describeIssue = (issue: SchemaIssue.Issue, prefix: string, names: Readonly<Record<string, string>>): GrpcFailure => {
  const [first] = SchemaIssue.makeFormatterStandardSchemaV1()(issue).issues
  const path = (first?.path ?? []).map((segment) => {
    const key = typeof segment === "object" && segment !== null && "key" in segment ? segment.key : segment
    return typeof key === "string" ? names[key] ?? key : String(key)
  })
  return invalid([prefix, ...path].filter((s) => s.length > 0).join("."), first?.message ?? "invalid")
}

const decodeWith = <S extends Schema.Top & { readonly DecodingServices: never }>(
  schema: S,
  input: unknown,
  prefix: string,
  names: Readonly<Record<string, string>> = {}
): Effect.Effect<S["Type"], GrpcFailure> =>
  Schema.decodeUnknownEffect(schema)(input).pipe(Effect.mapError((error) => describeIssue(error.issue, prefix, names)))

/** proto SessionConfig field -> SessionConfigPatch key (all but asr_options_json, which is JSON text). */
const configFields = {
  sampleRate: "sample_rate",
  channels: "channels",
  encoding: "encoding",
  language: "language",
  aic: "aic",
  idleTimeoutSeconds: "idle_timeout_seconds"
} as const
const patchNames: Record<string, string> = { ...configFields, asr: "asr_options_json" }

/** A proto SessionConfig (unset `optional` fields are absent) -> the same SessionConfigPatch REST decodes. */
const decodeConfig = (raw: unknown, prefix: string) =>
  Effect.gen(function*() {
    const message = asRecord(raw)
    const input: Record<string, unknown> = {}
    for (const key of Object.keys(configFields)) {
      const value = message[key]
      if (value !== undefined && value !== null) input[key] = value
    }
    const asrJson = message["asrOptionsJson"]
    if (asrJson !== undefined && asrJson !== null) {
      input["asr"] = yield* Effect.try({
        try: (): unknown => JSON.parse(String(asrJson)),
        catch: () => invalid(`${prefix}.asr_options_json`, "not valid JSON")
      })
    }
    return yield* decodeWith(SessionConfigPatch, input, prefix, patchNames)
  })

const decodeSessionId = (request: unknown) => decodeWith(SessionId, asRecord(request)["sessionId"], "session_id")

const ListRequest = Schema.Struct({
  state: Schema.Union([Schema.Literal(""), SessionState]),
  limit: Schema.Number.check(Schema.isInt(), Schema.isBetween({ minimum: 0, maximum: 100 })),
  cursor: Schema.String.check(Schema.isMaxLength(256))
})
const decodeListQuery = (request: unknown) =>
  Effect.map(decodeWith(ListRequest, request, ""), ({ cursor, limit, state }) => {
    const query: ListQuery = {
      ...(state === "" ? {} : { state }),
      ...(limit === 0 ? {} : { limit }),
      ...(cursor === "" ? {} : { cursor })
    }
    return query
  })

// ---- responses ---------------------------------------------------------------------------

/** A Session in the proto shape (camelCase for proto-loader; absent times and error as ""). */
export const toProtoSession = (session: Session) => ({
  id: session.id,
  userId: session.userId,
  deviceId: session.deviceId,
  state: session.state,
  config: {
    sampleRate: session.config.sampleRate,
    channels: session.config.channels,
    encoding: session.config.encoding,
    language: session.config.language,
    asrOptionsJson: JSON.stringify(session.config.asr),
    aic: session.config.aic,
    idleTimeoutSeconds: session.config.idleTimeoutSeconds
  },
  context: session.context.map(({ at, role, text }) => ({ role, text, at })),
  createdAt: session.createdAt,
  startedAt: session.startedAt ?? "",
  endedAt: session.endedAt ?? "",
  expiresAt: session.expiresAt,
  lastActivityAt: session.lastActivityAt,
  error: session.error ?? ""
})

// ---- per call: auth, rate limit, deadline --------------------------------------------------

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

/** As over REST: a rejected token counts against the peer's IP budget, and past it the call is RESOURCE_EXHAUSTED. */
const authenticateCall = (call: IncomingCall) =>
  authenticate(bearerToken(call.metadata)).pipe(Effect.catchTag("InvalidToken", () =>
    Effect.flatMap(countBadToken(peerIp(call.getPeer())), (decision) => {
      if (Option.isNone(decision) || decision.value.allowed) return Effect.fail(unauthenticated)
      const metadata = new Metadata()
      for (const [key, value] of Object.entries(rateLimitHeaders(decision.value))) metadata.set(key, value)
      return Effect.fail(new GrpcFailure({ code: status.RESOURCE_EXHAUSTED, details: `Too many requests with bad tokens; retry after ${decision.value.retryAfterSeconds} s`, metadata }))
    })))

/** The per-user `session` rate limit; like REST, a rate-limiter outage lets the call through (logged). */
const rateLimit = (userId: string) =>
  Effect.gen(function*() {
    const limiter = yield* RateLimiter
    const decision = yield* limiter.check("session", userId).pipe(
      Effect.map(Option.some),
      Effect.catch((error) => Effect.as(Effect.logWarning("rate limiter unavailable, call let through", { error: error.message }), Option.none()))
    )
    if (Option.isNone(decision) || decision.value.allowed) return
    const metadata = new Metadata()
    for (const [key, value] of Object.entries(rateLimitHeaders(decision.value))) metadata.set(key, value)
    return yield* new GrpcFailure({
      code: status.RESOURCE_EXHAUSTED,
      details: `Rate limit of ${decision.value.limit} requests exceeded; retry after ${decision.value.retryAfterSeconds} s`,
      metadata
    })
  })

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

/** What the adapters need of a call (grpc-js does not export its ServerSurfaceCall). */
interface IncomingCall {
  readonly request: unknown
  readonly metadata: Metadata
  readonly getDeadline: () => Deadline
  readonly getPeer: () => string
}

/** Authentication, then the rate limit, then the call's work, all within the deadline; scoped to the call. */
const guarded = <A, E, R extends Services | Scope.Scope>(
  method: string,
  call: IncomingCall,
  work: (principal: Principal) => Effect.Effect<A, E, R>
) =>
  Effect.gen(function*() {
    const principal = yield* authenticateCall(call)
    yield* rateLimit(principal.userId)
    if (isMalformed(call.request)) return yield* invalid("request", `not a valid ${method} request message`)
    return yield* work(principal)
  }).pipe(
    untilDeadline(call.getDeadline()),
    Effect.scoped,
    Effect.withSpan(`grpc ${SESSION_SERVICE}/${method}`)
  )

/** The error response for a call's failure cause; defects and unknown failures are logged and INTERNAL. */
const responseOf = (method: string, cause: Cause.Cause<CallError>) =>
  Effect.gen(function*() {
    const failure = Cause.findErrorOption(cause)
    const response = Option.isSome(failure) ? toServiceError(failure.value) : INTERNAL()
    if (response.code === status.INTERNAL) {
      yield* Effect.logError(`gRPC ${method} failed`, cause).pipe(Effect.annotateLogs({ event: "grpc_internal_error", method }))
    }
    return response
  })

const shuttingDown = () => serviceError(status.UNAVAILABLE, "The server is shutting down")

// ---- the service -------------------------------------------------------------------------

const register = Effect.gen(function*() {
  const grpc = yield* GrpcServer
  const { service } = yield* AppConfig
  const pkg = yield* Effect.try({
    try: () => tolerantRequests(loadProto("session.proto"), SESSION_SERVICE),
    catch: (error) => new GrpcServerError({ message: `proto/session.proto: ${error instanceof Error ? error.message : String(error)}` })
  })

  // Released in reverse: streams (watches) are ended first, then unary calls get until the shutdown
  // deadline to finish, then whatever is left is interrupted.
  const unaryCalls = yield* FiberSet.make<void, never>()
  const runUnaryCall = yield* FiberSet.runtime(unaryCalls)<Services>()
  yield* Effect.addFinalizer(() => FiberSet.awaitEmpty(unaryCalls).pipe(Effect.timeoutOption(Duration.millis(service.shutdownTimeoutMs))))
  const streamCalls = yield* FiberSet.make<void, never>()
  const runStreamCall = yield* FiberSet.runtime(streamCalls)<Services>()

  const unary = <A, E extends CallError>(
    method: string,
    work: (request: unknown, principal: Principal) => Effect.Effect<A, E, Services | Scope.Scope>
  ) =>
  (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
    let answered = false
    const answer = (error: ServerErrorResponse | null, value?: unknown) => {
      if (answered || call.cancelled) return
      answered = true
      if (error === null) callback(null, value)
      else callback(error)
    }
    const fiber = runUnaryCall(guarded(method, call, (principal) => work(call.request, principal)).pipe(
      Effect.matchCauseEffect({
        onSuccess: (value) => Effect.sync(() => answer(null, value)),
        onFailure: (cause) => Effect.map(responseOf(method, cause), (response) => answer(response))
      }),
      Effect.onInterrupt(() => Effect.sync(() => answer(shuttingDown())))
    ))
    call.on("cancelled", () => fiber.interruptUnsafe())
  }

  const watch = (call: ServerWritableStream<unknown, unknown>) => {
    let closed = false
    const close = (error: ServerErrorResponse | null) => {
      if (closed || call.cancelled) return
      closed = true
      if (error === null) call.end()
      else call.emit("error", error)
    }
    const send = (session: Session) =>
      call.write(toProtoSession(session))
        ? Effect.void
        : Effect.callback<void>((resume) => void call.once("drain", () => resume(Effect.void)))
    const fiber = runStreamCall(guarded("WatchSession", call, (principal) =>
      Effect.gen(function*() {
        const id = yield* decodeSessionId(call.request)
        const changes = yield* watchSession(principal, id)
        yield* Stream.runForEach(changes, send)
      })).pipe(
        Effect.matchCauseEffect({
          onSuccess: () => Effect.sync(() => close(null)),
          onFailure: (cause) => Effect.map(responseOf("WatchSession", cause), close)
        }),
        Effect.onInterrupt(() => Effect.sync(() => close(shuttingDown())))
      ))
    call.on("cancelled", () => fiber.interruptUnsafe())
  }

  const implementation: UntypedServiceImplementation = {
    StartSession: unary("StartSession", (request, principal) =>
      Effect.flatMap(decodeConfig(asRecord(request)["config"], "config"), (config) => startSession(principal, config)).pipe(
        Effect.map(toProtoSession)
      )),
    StopSession: unary("StopSession", (request, principal) =>
      Effect.flatMap(decodeSessionId(request), (id) => stopSession(principal, id)).pipe(Effect.map(toProtoSession))),
    GetSession: unary("GetSession", (request, principal) =>
      Effect.flatMap(decodeSessionId(request), (id) => getSession(principal, id)).pipe(Effect.map(toProtoSession))),
    UpdateSessionConfig: unary("UpdateSessionConfig", (request, principal) =>
      Effect.gen(function*() {
        const id = yield* decodeSessionId(request)
        const patch = yield* decodeConfig(asRecord(request)["config"], "config")
        return toProtoSession(yield* updateSessionConfig(principal, id, patch))
      })),
    ListUserSessions: unary("ListUserSessions", (request, principal) =>
      Effect.gen(function*() {
        const page = yield* listSessions(principal, yield* decodeListQuery(request))
        return { sessions: page.sessions.map(toProtoSession), nextCursor: page.nextCursor ?? "" }
      })),
    WatchSession: watch
  }
  yield* grpc.addService(pkg, SESSION_SERVICE, implementation)
})

/**
 * `auralink.session.v1.SessionService` on the GrpcServer: thin adapters over the same session
 * programs as REST, with the same SessionServices, auth services and rate limiter layers (memoized
 * by reference, so one store, cache and set of metrics serve both).
 */
export const SessionGrpcLive = Layer.effectDiscard(register).pipe(
  Layer.provide(Layer.mergeAll(SessionServices, AuthServices, RateLimiter.layer))
)
