import { Effect, Result } from "effect"
import type { HttpServerRequest, HttpServerResponse } from "effect/http"

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })
const BODY_METHODS: ReadonlySet<string> = new Set(["POST", "PUT", "PATCH", "DELETE"])
/** RFC 9112 §6.3: a request with neither Content-Length nor Transfer-Encoding has no body. */
const hasBody = (headers: Readonly<Record<string, string | undefined>>) =>
  headers["transfer-encoding"] !== undefined || (headers["content-length"] !== undefined && headers["content-length"] !== "0")
const isJson = (contentType: string | undefined) => contentType === undefined || /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(contentType)

/** Why a JSON body's bytes are not JSON text (RFC 8259 §8.1: UTF-8, no byte-order mark), if they are not. */
const encodingProblem = (bytes: Uint8Array): string | undefined => {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return "The JSON body starts with a byte-order mark; send UTF-8 without one"
  try {
    strictUtf8.decode(bytes)
    return undefined
  } catch {
    return "The JSON body is not valid UTF-8"
  }
}

/**
 * Reads a JSON request body (one that is there) up front and refuses one that is not strict UTF-8 (the platform's
 * decoder would drop a BOM and turn bad bytes into U+FFFD, storing what the client never sent).
 * The body is cached on the request, so the endpoint reads the same bytes; a read failure (too
 * large, aborted) is left to the endpoint, which answers it as before.
 */
export const utf8JsonBody = <E, R>(
  request: HttpServerRequest.HttpServerRequest,
  next: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>,
  badRequest: (detail: string) => HttpServerResponse.HttpServerResponse
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R> => {
  if (!BODY_METHODS.has(request.method) || !hasBody(request.headers) || !isJson(request.headers["content-type"])) return next
  return Effect.flatMap(Effect.result(request.arrayBuffer), (read) => {
    if (Result.isFailure(read)) return next
    const problem = encodingProblem(new Uint8Array(read.success))
    return problem === undefined ? next : Effect.succeed(badRequest(problem))
  })
}
