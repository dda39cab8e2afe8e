import { Effect, Layer } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { AuthMetrics } from "../../layers/auth/metrics.ts"
import { AuthStore } from "../../layers/AuthStore.ts"
import { AppConfig } from "../../layers/Config.ts"
import { TokenSigner } from "../../layers/Tokens.ts"
import { Api } from "../../schemas/api.ts"
import { AuthenticationLive } from "./authenticate.ts"
import { issueToken } from "./issue-token.ts"
import { requireProvisioningKey } from "./provisioning.ts"
import { refresh } from "./refresh.ts"
import { registerDevice } from "./register-device.ts"
import { revokeDevice, revokeSession } from "./revoke.ts"
import { capturedServices } from "../captured.ts"

/** Infrastructure failures (SQL, state store) are defects here: a generic 500 with the requestId. */
const AuthGroup = HttpApiBuilder.group(
  Api,
  "auth",
  Effect.fn(function*(handlers) {
    const services = yield* capturedServices<AppConfig | AuthStore | AuthMetrics | TokenSigner>()
    const { auth } = yield* AppConfig
    const run = <A, E>(effect: Effect.Effect<A, E, AppConfig | AuthStore | AuthMetrics | TokenSigner>) =>
      effect.pipe(Effect.provideContext(services))
    return handlers.handleAll({
      registerDevice: ({ headers, payload }) =>
        run(requireProvisioningKey(headers).pipe(Effect.andThen(Effect.orDie(registerDevice(payload))))),
      revokeDevice: ({ headers, params }) => run(revokeDevice(params.id, headers).pipe(Effect.catchTag("SqlError", Effect.die))),
      token: ({ payload }) => run(issueToken(payload, auth.refreshTokenTtlSeconds).pipe(Effect.catchTag("SqlError", Effect.die))),
      refresh: ({ payload }) => run(refresh(payload, auth.refreshTokenTtlSeconds).pipe(Effect.catchTag("SqlError", Effect.die)))
    })
  })
)

const AuthSessionGroup = HttpApiBuilder.group(
  Api,
  "authSession",
  Effect.fn(function*(handlers) {
    const services = yield* capturedServices<AuthStore | AuthMetrics>()
    return handlers.handleAll({
      revoke: ({ payload }) => revokeSession(payload).pipe(Effect.catchTag("SqlError", Effect.die), Effect.provideContext(services))
    })
  })
)

const JwksGroup = HttpApiBuilder.group(Api, "jwks", (handlers) =>
  Effect.map(Effect.service(TokenSigner), (signer) => handlers.handle("jwks", () => Effect.succeed(signer.jwks))))

/** The services auth needs beyond Postgres, the state store, config and metrics. */
export const AuthServices = Layer.mergeAll(AuthStore.layer, TokenSigner.layer, AuthMetrics.layer)

/** The auth handlers, with their services. */
export const AuthHandlers = Layer.mergeAll(AuthGroup, AuthSessionGroup, JwksGroup).pipe(Layer.provide(AuthServices))

/** The Authentication middleware, for `apiRoutes`' middleware slot (the router resolves it per request). */
export const AuthMiddleware = AuthenticationLive.pipe(Layer.provide(AuthServices))
