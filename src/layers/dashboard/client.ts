import { Duration, Effect, Option, Redacted, Schema } from "effect"
import { type BridgeHeartbeat, BridgeRegistered, type BridgeRegistration } from "../../schemas/dashboard.ts"
import { errorMessage } from "../error-message.ts"

/** A Dashboard call that failed: unreachable, timed out, refused, or answered with something unreadable. */
export class DashboardError extends Schema.TaggedError<DashboardError>()("DashboardError", {
  operation: Schema.String,
  detail: Schema.String,
  /** The HTTP status the Dashboard answered, when it answered. */
  status: Schema.optionalKey(Schema.Number)
}) {
  override get message(): string {
    return `Dashboard ${this.operation}: ${this.detail}`
  }
}

/** The Dashboard's bridge registry over HTTP (the contract in src/schemas/dashboard.ts). */
export interface DashboardClient {
  readonly register: (body: BridgeRegistration) => Effect.Effect<BridgeRegistered, DashboardError>
  /** Fails with status 404 when the Dashboard no longer knows the bridge. */
  readonly heartbeat: (bridgeId: string, body: BridgeHeartbeat) => Effect.Effect<void, DashboardError>
  /** A bridge the Dashboard does not know (404) counts as deregistered. */
  readonly deregister: (bridgeId: string) => Effect.Effect<void, DashboardError>
}

const decodeRegistered = Schema.decodeUnknownEffect(BridgeRegistered)

/** fetch's own message is only "fetch failed"; its cause says why (ECONNREFUSED, a reset). */
const fetchFailure = (error: unknown): string =>
  error instanceof Error && error.cause instanceof Error ? `${error.message}: ${error.cause.message}` : errorMessage(error)

export const makeDashboardClient = (baseUrl: string, apiKey: Option.Option<Redacted.Redacted<string>>, timeoutMs: number): DashboardClient => {
  const root = baseUrl.replace(/\/+$/, "")
  const headers = (json: boolean): Record<string, string> => ({
    accept: "application/json",
    ...(json ? { "content-type": "application/json" } : {}),
    ...Option.match(apiKey, { onNone: () => ({}), onSome: (k) => ({ authorization: `Bearer ${Redacted.value(k)}` }) })
  })
  /** One request; answers outside `ok` fail carrying their status. Resolves the body's text. */
  const call = (operation: string, method: string, path: string, body: unknown, ok: ReadonlyArray<number>) =>
    Effect.tryPromise({
      try: async (signal) => {
        const response = await fetch(`${root}${path}`, {
          method,
          headers: headers(body !== undefined),
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          signal
        })
        const text = await response.text()
        return { status: response.status, text }
      },
      catch: (error) => new DashboardError({ operation, detail: fetchFailure(error) })
    }).pipe(
      Effect.timeoutOrElse({
        duration: Duration.millis(timeoutMs),
        orElse: () => Effect.fail(new DashboardError({ operation, detail: `no answer within ${timeoutMs} ms` }))
      }),
      Effect.flatMap(({ status, text }) =>
        ok.includes(status)
          ? Effect.succeed(text)
          : Effect.fail(new DashboardError({ operation, detail: `answered ${status}${text === "" ? "" : `: ${text.slice(0, 200)}`}`, status }))
      )
    )
  const path = (bridgeId: string) => `/api/v1/bridges/${encodeURIComponent(bridgeId)}`
  return {
    register: (body) =>
      call("register", "POST", "/api/v1/bridges", body, [200, 201]).pipe(
        Effect.flatMap((text) =>
          Effect.try({ try: (): unknown => JSON.parse(text), catch: (error) => errorMessage(error) }).pipe(
            Effect.flatMap((json) => Effect.mapError(decodeRegistered(json), (error) => error.message)),
            Effect.mapError((detail) => new DashboardError({ operation: "register", detail: `unreadable answer: ${detail}` }))
          )
        )
      ),
    heartbeat: (bridgeId, body) => Effect.asVoid(call("heartbeat", "PUT", `${path(bridgeId)}/heartbeat`, body, [200, 204])),
    deregister: (bridgeId) => Effect.asVoid(call("deregister", "DELETE", path(bridgeId), undefined, [200, 204, 404]))
  }
}
