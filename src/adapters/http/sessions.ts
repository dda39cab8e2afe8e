import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import type { Cluster } from "../../layers/Cluster.ts"
import type { ClusterMetrics } from "../../layers/cluster/metrics.ts"
import { AppConfig } from "../../layers/Config.ts"
import type { Membership } from "../../programs/cluster/membership.ts"
import { SessionEvents } from "../../layers/sessions/events.ts"
import { SessionMetrics } from "../../layers/sessions/metrics.ts"
import { Sessions } from "../../layers/SessionStore.ts"
import { appendSessionContext } from "../../programs/sessions/append-context.ts"
import { getSession } from "../../programs/sessions/get.ts"
import { listSessions } from "../../programs/sessions/list.ts"
import { startSession } from "../../programs/sessions/start.ts"
import { stopSession } from "../../programs/sessions/stop.ts"
import { updateSessionConfig } from "../../programs/sessions/update-config.ts"
import { mintShareToken } from "../../programs/whip/share.ts"
import { StateStore } from "../../layers/StateStore.ts"
import { Api } from "../../schemas/api.ts"
import { capturedServices, principalRunner } from "./captured.ts"

type Services = AppConfig | Sessions | SessionEvents | SessionMetrics | StateStore | Cluster | ClusterMetrics | Membership

/** Thin adapters: the principal from the Authentication middleware, SQL failures as defects (500). */
export const SessionsGroup = HttpApiBuilder.group(
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
      share: ({ params, payload }) => run((p) => mintShareToken(p, params.id, payload ?? {})),
      list: ({ query }) => run((p) => listSessions(p, query))
    })
  })
)
