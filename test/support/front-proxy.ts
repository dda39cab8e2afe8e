import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http"
import type { AddressInfo } from "node:net"

/**
 * "One address" in front of several instances, as a load balancer would be: each request is
 * forwarded to the instance `pick` names (by method and path), bodies and responses streamed
 * (SSE included), redirects passed to the client as they are. Tests use it to make a session's
 * signaling land on an instance other than the one that owns the session.
 */
export interface FrontProxy {
  readonly url: string
  readonly close: () => Promise<void>
}

export const startFrontProxy = async (pick: (request: IncomingMessage) => string): Promise<FrontProxy> => {
  const server: Server = createServer((incoming, outgoing) => {
    const target = new URL(incoming.url ?? "/", pick(incoming))
    const upstream = httpRequest(target, { method: incoming.method, headers: { ...incoming.headers, host: target.host } }, (answer) => {
      outgoing.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(outgoing)
    })
    upstream.on("error", () => {
      if (!outgoing.headersSent) outgoing.writeHead(502)
      outgoing.end()
    })
    incoming.pipe(upstream)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address()
  const port = typeof address === "object" && address !== null ? (address satisfies AddressInfo).port : 0
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}
