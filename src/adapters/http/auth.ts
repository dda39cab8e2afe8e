import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { AuthMetrics } from "../../layers/auth/metrics.ts"
import { AuthStore } from "../../layers/AuthStore.ts"
import { AppConfig } from "../../layers/Config.ts"
import { TokenSigner } from "../../layers/Tokens.ts"
import { issueToken } from "../../programs/auth/issue-token.ts"
import { requireProvisioningKey } from "../../programs/auth/provisioning.ts"
import { refresh } from "../../programs/auth/refresh.ts"
import { registerDevice } from "../../programs/auth/register-device.ts"
import { revokeDevice, revokeSession } from "../../programs/auth/revoke.ts"
import { Api } from "../../schemas/api.ts"
import { capturedServices } from "./captured.ts"

/** Infrastructure failures (SQL, state store) are defects here: a generic 500 with the requestId. */
export const AuthGroup = HttpApiBuilder.group(
  Api,
  "auth",
  Effect.fn(function*(handlers) {
    const services = yield* capturedServices<AppConfig | AuthStore | AuthMetrics | TokenSigner>()
    const { auth } = yield* AppConfig
    const run = <A, E>(effect: Effect.Effect<A, E, AppConfig | AuthStore | AuthMetrics | TokenSigner>) => effect.pipe(Effect.provideContext(services))
    return handlers.handleAll({
      registerDevice: ({ headers, payload }) => run(requireProvisioningKey(headers).pipe(Effect.andThen(Effect.orDie(registerDevice(payload))))),
      revokeDevice: ({ headers, params }) => run(revokeDevice(params.id, headers).pipe(Effect.catchTag("SqlError", Effect.die))),
      token: ({ payload }) => run(issueToken(payload, auth.refreshTokenTtlSeconds).pipe(Effect.catchTag("SqlError", Effect.die))),
      refresh: ({ payload }) => run(refresh(payload, auth.refreshTokenTtlSeconds).pipe(Effect.catchTag("SqlError", Effect.die)))
    })
  })
)

export const AuthSessionGroup = HttpApiBuilder.group(
  Api,
  "authSession",
  Effect.fn(function*(handlers) {
    const services = yield* capturedServices<AuthStore | AuthMetrics>()
    return handlers.handleAll({
      revoke: ({ payload }) => revokeSession(payload).pipe(Effect.catchTag("SqlError", Effect.die), Effect.provideContext(services))
    })
  })
)

export const JwksGroup = HttpApiBuilder.group(
  Api,
  "jwks",
  (handlers) => Effect.map(Effect.service(TokenSigner), (signer) => handlers.handle("jwks", () => Effect.succeed(signer.jwks)))
)
