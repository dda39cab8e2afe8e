import { Layer } from "effect"
import { apiRoutes } from "../../layers/HttpServer.ts"
import { Api } from "../../schemas/api.ts"
import { AuraIdGroup } from "./auraid.ts"
import { AuthGroup, AuthSessionGroup, JwksGroup } from "./auth.ts"
import { SessionAffinity } from "./affinity.ts"
import { AuthenticationLive } from "./authentication.ts"
import { ClusterGroup } from "./cluster.ts"
import { DEMO_PATHS } from "./demo.ts"
import { EVENTS_PATH, SessionEventsRoute } from "./events.ts"
import { ParticipantsGroup } from "./participants.ts"
import { RateLimitLive, UserRateLimitLive } from "./rate-limit.ts"
import { LIVEKIT_WEBHOOK_PATH, LiveKitWebhookRoute } from "./livekit-webhook.ts"
import { RoomsGroup } from "./rooms.ts"
import { SessionsGroup } from "./sessions.ts"
import { SignalingGroup } from "./signaling.ts"
import { SystemGroup } from "./system.ts"
import { WHIP_ROUTES, WhipRoutes } from "./whip.ts"

/** Every handler group of the API. */
const ApiHandlers = Layer.mergeAll(
  SystemGroup,
  AuthGroup,
  AuthSessionGroup,
  JwksGroup,
  SessionsGroup,
  SignalingGroup,
  RoomsGroup,
  ParticipantsGroup,
  ClusterGroup
)

/** The API's own middleware: bearer authentication, and rate limits by client IP (auth) and by user. */
const ApiMiddleware = Layer.mergeAll(AuthenticationLive, RateLimitLive("auth"), UserRateLimitLive)

/**
 * The service's API and its server-sent events (the demo's routes are `DemoRoutes`, beside them).
 * They require the services built below the listeners (main.ts) and provide none.
 */
export const ApiRoutes = Layer.mergeAll(
  apiRoutes(Api, Layer.merge(ApiHandlers, AuraIdGroup), ApiMiddleware, [
    { method: "GET", path: EVENTS_PATH },
    { method: "POST", path: LIVEKIT_WEBHOOK_PATH },
    ...DEMO_PATHS.map((path) => ({ method: "GET", path })),
    ...WHIP_ROUTES.map(({ method, path }) => ({ method, path }))
  ]),
  SessionEventsRoute,
  LiveKitWebhookRoute,
  WhipRoutes,
  SessionAffinity
)
