import { Effect } from "effect"
import { Cluster } from "../../layers/Cluster.ts"
import { ProvisioningUnauthorized } from "../../schemas/auth.ts"
import { isOperatorRequest } from "../auth/operator.ts"
import type { CredentialHeaders } from "../auth/provisioning.ts"
import { SessionDrain } from "../sessions/drain.ts"

const requireOperator = (headers: CredentialHeaders) =>
  Effect.flatMap(
    isOperatorRequest(headers),
    (operator) =>
      operator
        ? Effect.void
        : Effect.fail(new ProvisioningUnauthorized({ detail: "An operator credential (the provisioning key or an operator access token) is required" }))
  )

/** `GET /api/cluster`: every registered instance, alive or lost. */
export const listCluster = (headers: CredentialHeaders) =>
  Effect.gen(function*() {
    yield* requireOperator(headers)
    const cluster = yield* Cluster
    return { self: cluster.self.id, instances: yield* Effect.orDie(cluster.instances) }
  })

/** `POST /api/admin/drain`: this instance drains as on SIGTERM, but stays up afterwards (not ready) until stopped. */
export const drainInstance = (headers: CredentialHeaders) =>
  Effect.gen(function*() {
    yield* requireOperator(headers)
    const state = yield* (yield* SessionDrain).begin
    yield* Effect.logInfo("drain requested by an operator").pipe(Effect.annotateLogs({ event: "drain_requested" }))
    return { draining: true as const, sessions: state.sessions, deadline: state.deadline.toISOString() }
  })
