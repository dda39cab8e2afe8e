import { createServer, type Server } from "node:http"
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
  return server
}
