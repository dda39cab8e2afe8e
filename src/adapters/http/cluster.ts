import { Effect, Layer } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import type { AuthMetrics } from "../../layers/auth/metrics.ts"
import type { AuthStore } from "../../layers/AuthStore.ts"
import type { Cluster } from "../../layers/Cluster.ts"
import type { AppConfig } from "../../layers/Config.ts"
import type { TokenSigner } from "../../layers/Tokens.ts"
import { drainInstance, listCluster } from "../../programs/cluster/operator.ts"
import type { SessionDrain } from "../../programs/sessions/drain.ts"
import { Api } from "../../schemas/api.ts"
import { capturedServices, seeingApiMiddlewareOnly } from "./captured.ts"

/** `GET /api/cluster` and `POST /api/admin/drain` (operators). */
export const ClusterGroup = Layer.unwrap(Effect.gen(function*() {
  const services = yield* capturedServices<AppConfig | Cluster | SessionDrain | AuthStore | TokenSigner | AuthMetrics>()
  return seeingApiMiddlewareOnly(HttpApiBuilder.group(Api, "cluster", (handlers) =>
    handlers.handleAll({
      list: ({ headers }) => listCluster(headers).pipe(Effect.provideContext(services)),
      drain: ({ headers }) => drainInstance(headers).pipe(Effect.provideContext(services))
    })))
}))
