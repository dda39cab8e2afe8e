import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { Settings } from "../../config/settings.ts"

/**
 * A Node HTTP server with the configured limits instead of Node's defaults (a slow body held 300 s,
 * no connection cap): headers and whole-request timeouts (408, then closed; they cover receiving the
 * request only, so a long response such as SSE is not cut), the keep-alive idle timeout, and a cap
 * on open connections (Node closes the ones past it at once).
 */
export const createListener = (http: Settings["http"]): Server => {
  const server = createServer({
    headersTimeout: http.headersTimeoutMs,
    requestTimeout: http.requestTimeoutMs,
    keepAliveTimeout: http.keepAliveTimeoutMs,
    // Node enforces both timeouts on this sweep (default 30 s), so sweep often enough for them to mean what they say.
    connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(http.headersTimeoutMs / 2)))
  })
  server.maxConnections = http.maxConnections
  answerWhileStarting(server)
  return server
}

/**
 * The server listens as soon as its layer is built, but the app's request handler is attached only
 * after the layers above it are built: a request in between would never be answered (Node emits it
 * to no one). Until that handler arrives, answer 503 with `Retry-After` and close.
 */
const answerWhileStarting = (server: Server): void => {
  const starting = (_request: IncomingMessage, response: ServerResponse) => {
    response.writeHead(503, { "content-type": "application/problem+json", "retry-after": "1", connection: "close" })
    response.end(JSON.stringify({ type: "about:blank", status: 503, title: "Service Unavailable", detail: "The service is starting; retry shortly" }))
  }
  const handOver = (event: string | symbol, listener: unknown) => {
    if (event !== "request" || listener === starting) return
    server.off("request", starting)
    server.off("newListener", handOver)
  }
  server.on("request", starting)
  server.on("newListener", handOver)
}
