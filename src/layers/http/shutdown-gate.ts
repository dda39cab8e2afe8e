import { Effect } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { Health } from "../Health.ts"
import { unavailableProblem } from "./problem.ts"

/** Retry-After of a request refused during shutdown: another instance (or this one restarted) takes it. */
const SHUTDOWN_RETRY_AFTER_SECONDS = 1

/**
 * What starts new media work: a transport, producer or channel of a session. (New sessions are
 * refused by admission control, which adds where to go instead.)
 */
const startsWork = (method: string, path: string): boolean => method === "POST" && path.startsWith("/api/webrtc/")

/**
 * Once shutdown (or a drain) began: requests that would start a transport or producer get 503 (with
 * Retry-After), and every response carries `Connection: close`, so a busy keep-alive connection
 * is closed after its in-flight request instead of keeping the listener open.
 */
export const ShutdownGate = HttpRouter.middleware(
  Effect.gen(function*() {
    const health = yield* Health
    return (httpEffect) =>
      Effect.flatMap(health.shuttingDown, (stopping) => {
        if (!stopping) return httpEffect
        return Effect.flatMap(Effect.service(HttpServerRequest.HttpServerRequest), (request) => {
          const path = new URL(request.url, "http://x").pathname
          const response = startsWork(request.method, path)
            ? Effect.succeed(unavailableProblem("The server is shutting down; retry on another instance", SHUTDOWN_RETRY_AFTER_SECONDS, path))
            : httpEffect
          return Effect.map(response, HttpServerResponse.setHeader("connection", "close"))
        })
      })
  }),
  { global: true }
)
