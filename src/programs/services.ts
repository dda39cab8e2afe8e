import { Layer } from "effect"
import { RateLimiter } from "../layers/RateLimiter.ts"
import { AuthServices } from "./auth/http.ts"
import { SessionServices } from "./sessions/http.ts"
import { MediaServices } from "./signaling/http.ts"

/**
 * The services the HTTP API and the gRPC SessionService share: the session store, cache, change
 * events and metrics (with the expiry sweeper), the media server (mediasoup workers) with its session lifecycle program, the auth services and the rate limiter. Build it
 * below both listeners (`Layer.provideMerge(SharedServices)`): `HttpRouter.serve` builds its app
 * with a forked memo map, so a layer first built inside it is private to the HTTP server, while one
 * already built below is found by reference and reused. Both adapters still `Layer.provide` these
 * same layer values themselves, so either also works on its own.
 */
export const SharedServices = Layer.mergeAll(SessionServices, MediaServices, AuthServices, RateLimiter.layer)
