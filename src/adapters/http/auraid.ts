import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { type AuraIdResolver, CommunicationServiceUnavailable } from "../../layers/AuraIdResolver.ts"
import { findAuraIdByContact, resolveAuraId, resolveAuraIds } from "../../programs/auraid/resolve.ts"
import { Api } from "../../schemas/api.ts"
import { serviceUnavailable } from "../../schemas/unavailable.ts"
import { capturedServices, principalRunner } from "./captured.ts"

type Services = AuraIdResolver

/** The Communication Service unreachable (with nothing usable cached), or resolution off: 503. */
const upstreamFailures = <A, E, R>(program: Effect.Effect<A, E | CommunicationServiceUnavailable, R>) =>
  program.pipe(Effect.catchIf(
    (error): error is CommunicationServiceUnavailable => error instanceof CommunicationServiceUnavailable,
    (error) => Effect.fail(serviceUnavailable(`AuraID resolution unavailable: ${error.reason}`))
  ))

export const AuraIdGroup = HttpApiBuilder.group(
  Api,
  "auraid",
  Effect.fn(function*(handlers) {
    const run = principalRunner<Services>(yield* capturedServices<Services>())
    return handlers.handleAll({
      get: ({ params }) => run((p) => upstreamFailures(resolveAuraId(p, params.id))),
      resolve: ({ payload }) => run((p) => upstreamFailures(resolveAuraIds(p, payload.ids))),
      findByContact: ({ query }) => run((p) => upstreamFailures(findAuraIdByContact(p, query)))
    })
  })
)
