import { Effect, Layer } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { AppConfig } from "../../layers/Config.ts"
import { SessionEvents } from "../../layers/sessions/events.ts"
import { SessionMetrics } from "../../layers/sessions/metrics.ts"
import { Sessions } from "../../layers/SessionStore.ts"
import { Api } from "../../schemas/api.ts"
import { appendSessionContext } from "./append-context.ts"
import { getSession } from "./get.ts"
import { listSessions } from "./list.ts"
import { startSession } from "./start.ts"
import { stopSession } from "./stop.ts"
import { SweeperLive } from "./sweep.ts"
import { updateSessionConfig } from "./update-config.ts"
import { capturedServices, principalRunner } from "../captured.ts"

type Services = AppConfig | Sessions | SessionEvents | SessionMetrics

/** Thin adapters: the principal from the Authentication middleware, SQL failures as defects (500). */
const SessionsGroup = HttpApiBuilder.group(
  Api,
  "sessions",
  Effect.fn(function*(handlers) {
    const run = principalRunner<Services>(yield* capturedServices<Services>())
    return handlers.handleAll({
      start: ({ payload }) => run((p) => startSession(p, payload ?? {})),
      stop: ({ params }) => run((p) => stopSession(p, params.id)),
      get: ({ params }) => run((p) => getSession(p, params.id)),
      updateConfig: ({ params, payload }) => run((p) => updateSessionConfig(p, params.id, payload)),
      appendContext: ({ params, payload }) => run((p) => appendSessionContext(p, params.id, payload)),
      list: ({ query }) => run((p) => listSessions(p, query))
    })
  })
)

/** The session services (store + cache, change events, metrics and /status section) and the expiry sweeper. */
export const SessionServices = SweeperLive.pipe(
  Layer.provideMerge(Layer.mergeAll(SessionEvents.layer, SessionMetrics.layer)),
  Layer.provideMerge(Sessions.layer)
)

export const SessionHandlers = SessionsGroup.pipe(Layer.provide(SessionServices))
