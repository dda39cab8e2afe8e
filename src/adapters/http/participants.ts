import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { AppConfig } from "../../layers/Config.ts"
import { ParticipantStore, ParticipantStoreError, type ParticipantStoreFailure } from "../../layers/ParticipantStore.ts"
import { StateStoreError } from "../../layers/StateStore.ts"
import { getParticipant } from "../../programs/participants/get-participant.ts"
import { qosHistory } from "../../programs/participants/qos-history.ts"
import { reportQos } from "../../programs/participants/report-qos.ts"
import { updateCapabilities } from "../../programs/participants/update-capabilities.ts"
import { updatePresence } from "../../programs/participants/update-presence.ts"
import { Api } from "../../schemas/api.ts"
import { serviceUnavailable } from "../../schemas/unavailable.ts"
import { capturedServices, principalRunner } from "./captured.ts"

type Services = AppConfig | ParticipantStore

/** The state store unreachable is a 503 (retry); a corrupt stored value or a refused write is a defect (500). */
const storeFailures = <A, E, R>(program: Effect.Effect<A, E | ParticipantStoreFailure, R>) =>
  program.pipe(
    Effect.catchIf(
      (error): error is ParticipantStoreFailure => error instanceof StateStoreError || error instanceof ParticipantStoreError,
      (error) =>
        error instanceof StateStoreError && error.reason === "Backend"
          ? Effect.fail(serviceUnavailable("The state store is unavailable; retry shortly"))
          : Effect.die(error)
    )
  )

/** Thin adapters, as the sessions group: the principal from the Authentication middleware. */
export const ParticipantsGroup = HttpApiBuilder.group(
  Api,
  "participants",
  Effect.fn(function*(handlers) {
    const run = principalRunner<Services>(yield* capturedServices<Services>())
    return handlers.handleAll({
      get: ({ params }) => run((p) => storeFailures(getParticipant(p, params.identity))),
      updateCapabilities: ({ params, payload }) => run((p) => storeFailures(updateCapabilities(p, params.identity, payload))),
      reportQos: ({ params, payload }) => run((p) => storeFailures(reportQos(p, params.identity, payload))),
      qosHistory: ({ params, query }) => run((p) => storeFailures(qosHistory(p, params.identity, query.limit))),
      updatePresence: ({ params, payload }) => run((p) => storeFailures(updatePresence(p, params.identity, payload.status)))
    })
  })
)
