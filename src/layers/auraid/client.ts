import { Duration, Effect, Option, Redacted, Schedule, Schema } from "effect"
import type { Counter } from "prom-client"
import { AuraIdentity, UpstreamBatchResponse } from "../../schemas/auraid.ts"
import type { CircuitBreaker } from "../resilience/circuitBreaker.ts"

/** The Communication Service could not give an answer (network, timeout, 5xx, a refused key, a malformed body, breaker open). */
export class CommunicationServiceUnavailable extends Schema.TaggedError<CommunicationServiceUnavailable>()("CommunicationServiceUnavailable", {
  reason: Schema.String,
  /** Worth another attempt (network, timeout, 5xx), as opposed to a 4xx or a malformed answer. */
  transient: Schema.Boolean
}) {}

export type Operation = "get" | "batch" | "lookup" | "health"

export interface ClientOptions {
  readonly baseUrl: string
  readonly apiKey: Option.Option<Redacted.Redacted<string>>
  readonly timeoutMs: number
  readonly retries: number
  readonly breaker: CircuitBreaker
  readonly calls: Counter<"operation" | "result">
}

const unavailable = (reason: string, transient: boolean) => new CommunicationServiceUnavailable({ reason, transient })

/** The JSON value of `text`; undefined when it is empty or not JSON. */
const parseJson = (text: string): unknown => {
  if (text === "") return undefined
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** One HTTP exchange: the status and the JSON body (undefined when there is none or it is not JSON). */
const exchange = (url: string, init: RequestInit, timeoutMs: number) =>
  Effect.tryPromise({
    try: async (signal) => {
      const response = await fetch(url, { ...init, signal })
      const text = await response.text()
      return { status: response.status, body: parseJson(text) }
    },
    catch: (error) => unavailable(error instanceof Error ? error.message : "request failed", true)
  }).pipe(
    Effect.timeoutOrElse({ duration: Duration.millis(timeoutMs), orElse: () => Effect.fail(unavailable(`no answer within ${timeoutMs} ms`, true)) })
  )

/**
 * The Communication Service's AuraID API (README "AuraID resolution"): every call has a per-attempt
 * deadline, jittered exponential retries of transient failures, and runs through the breaker;
 * every answer is decoded with Schema.
 */
export const makeCommunicationClient = (options: ClientOptions) => {
  const headers: Record<string, string> = { accept: "application/json" }
  if (Option.isSome(options.apiKey)) headers["authorization"] = `Bearer ${Redacted.value(options.apiKey.value)}`
  const retry = Schedule.exponential(Duration.millis(50)).pipe(Schedule.jittered)
  const base = options.baseUrl.replace(/\/+$/, "")

  /** Calls `path`; `accept` maps the status and body to the answer (or a failure). */
  const call = <A>(
    operation: Operation,
    path: string,
    init: RequestInit,
    accept: (status: number, body: unknown) => Effect.Effect<A, CommunicationServiceUnavailable>
  ) =>
    exchange(`${base}${path}`, { ...init, headers: { ...headers, ...init.headers } }, options.timeoutMs).pipe(
      Effect.flatMap(({ body, status }) =>
        status >= 500
          ? Effect.fail(unavailable(`HTTP ${status}`, true))
          : accept(status, body)
      ),
      Effect.retry({ schedule: retry, times: options.retries, while: (e) => e.transient }),
      options.breaker.protect,
      Effect.mapError((e) => (e._tag === "CircuitOpen" ? unavailable(e.message, false) : e)),
      Effect.tap(() => Effect.sync(() => options.calls.inc({ operation, result: "ok" }))),
      Effect.tapError(() => Effect.sync(() => options.calls.inc({ operation, result: "error" })))
    )

  const decode = <S extends Schema.Top & { readonly DecodingServices: never }>(schema: S, body: unknown) =>
    Schema.decodeUnknownEffect(schema)(body).pipe(Effect.mapError((e) => unavailable(`malformed answer: ${e.message}`, false)))

  const refused = (status: number) => Effect.fail(unavailable(`HTTP ${status}`, false))

  /** One identity, or None when the service does not know it (404). */
  const identity = (status: number, body: unknown): Effect.Effect<Option.Option<AuraIdentity>, CommunicationServiceUnavailable> =>
    status === 404 ? Effect.succeedNone : status === 200 ? Effect.asSome(decode(AuraIdentity, body)) : refused(status)

  return {
    get: (auraId: string) => call("get", `/api/v1/auraid/${encodeURIComponent(auraId)}`, { method: "GET" }, identity),
    batch: (ids: ReadonlyArray<string>) =>
      call("batch", "/api/v1/auraid/batch", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ids })
      }, (status, body) => (status === 200 ? decode(UpstreamBatchResponse, body) : refused(status))),
    lookup: (contact: { readonly email: string } | { readonly phone: string }) => {
      const query = "email" in contact ? `email=${encodeURIComponent(contact.email)}` : `phone=${encodeURIComponent(contact.phone)}`
      return call("lookup", `/api/v1/auraid?${query}`, { method: "GET" }, identity)
    },
    /** Readiness: `GET /api/v1/health` answers 2xx (no retries, no breaker: a probe reports, it does not protect). */
    health: exchange(`${base}/api/v1/health`, { headers }, options.timeoutMs).pipe(
      Effect.flatMap(({ status }) => (status >= 200 && status < 300 ? Effect.void : refused(status)))
    )
  }
}

export type CommunicationClient = ReturnType<typeof makeCommunicationClient>
