import type { HttpServerRequest } from "effect/http"
import { HttpServerResponse } from "effect/http"
import { createHash } from "node:crypto"
import { problem } from "./problem.ts"

/**
 * What browsers are told on every response: no MIME sniffing, no referrer, never framed, and a
 * Content-Security-Policy (API answers: nothing may load; HTML pages such as /demo and /docs: their
 * own origin plus the inline scripts they carry, by hash). CORS for the origins in CORS_ORIGINS
 * (none by default): preflights answered here, before routing.
 */
export interface BrowserPolicy {
  /** The answer to a CORS preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`), else undefined. */
  readonly preflight: (request: HttpServerRequest.HttpServerRequest, requestId: string, path: string) => HttpServerResponse.HttpServerResponse | undefined
  /** `response` with the security headers, CORS headers for an allowed `Origin`, and `X-Request-Id`. */
  readonly decorate: (
    request: HttpServerRequest.HttpServerRequest,
    response: HttpServerResponse.HttpServerResponse,
    requestId: string
  ) => HttpServerResponse.HttpServerResponse
}

export const CORS_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] as const
export const CORS_ALLOWED_HEADERS = [
  "Authorization",
  "Content-Type",
  "X-Request-Id",
  "X-Provisioning-Key",
  "Last-Event-ID",
  "If-Match",
  "If-None-Match"
] as const
export const CORS_EXPOSED_HEADERS = [
  "Location",
  "ETag",
  "Link",
  "Accept-Post",
  "Accept-Patch",
  "Retry-After",
  "RateLimit",
  "RateLimit-Policy",
  "RateLimit-Limit",
  "RateLimit-Remaining",
  "RateLimit-Reset",
  "WWW-Authenticate",
  "X-Request-Id"
] as const
const PREFLIGHT_MAX_AGE_SECONDS = 600
const EXPOSED = CORS_EXPOSED_HEADERS.join(", ")

const always = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY"
} as const

const API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

const INLINE_SCRIPT = /<script(?![^>]*\bsrc=)[^>]*>([\s\S]*?)<\/script>/gi
const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`

/**
 * The CSP of an HTML page: scripts from this origin, `blob:` (the demo's AudioWorklet module) and the
 * page's own inline scripts by hash; inline styles allowed (the demo's <style>, and Scalar injects its
 * own at run time); fetch/EventSource to this origin (and `connectSources`: the other instances a
 * request may be redirected to) only; never framed.
 */
export const htmlPolicy = (html: string, connectSources = ""): string => {
  const hashes = [...html.matchAll(INLINE_SCRIPT)].map((m) => sha256(m[1] ?? ""))
  return [
    "default-src 'self'",
    `script-src 'self' blob: ${hashes.join(" ")}`.trim(),
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    `connect-src 'self' ${connectSources}`.trim(),
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'"
  ].join("; ")
}

const isHtml = (response: HttpServerResponse.HttpServerResponse) => {
  const type = response.headers["content-type"] ?? (response.body._tag === "Uint8Array" ? response.body.contentType : "")
  return type.startsWith("text/html")
}

/** The page's text when the body is in memory (the demo page and the docs page are). */
const bodyText = (response: HttpServerResponse.HttpServerResponse): string | undefined =>
  response.body._tag === "Uint8Array" ? response.body.text ?? new TextDecoder().decode(response.body.body) : undefined

export const browserPolicy = (
  corsOrigins: ReadonlyArray<string>,
  /** Extra `connect-src` sources, space-separated, read for each page (the cluster's instances). */
  connectSources: () => string = () => ""
): BrowserPolicy => {
  const anyOrigin = corsOrigins.includes("*")
  const origins: ReadonlySet<string> = new Set(corsOrigins)
  const allowed = (origin: string | undefined): origin is string => origin !== undefined && (anyOrigin || origins.has(origin))
  const allowOrigin = (origin: string) => anyOrigin ? "*" : origin
  // The docs page (megabytes, Scalar inline) is built once and its body reused: hash it once.
  const policies = new WeakMap<object, { readonly sources: string; readonly policy: string }>()
  const pagePolicy = (response: HttpServerResponse.HttpServerResponse) => {
    const sources = connectSources()
    let cached = policies.get(response.body)
    if (cached === undefined || cached.sources !== sources) {
      const html = bodyText(response)
      if (html === undefined) return undefined
      cached = { sources, policy: htmlPolicy(html, sources) }
      policies.set(response.body, cached)
    }
    return cached.policy
  }

  return {
    preflight: (request, requestId, path) => {
      const method = request.headers["access-control-request-method"]
      if (request.method !== "OPTIONS" || method === undefined) return undefined
      const origin = request.headers["origin"]
      if (!allowed(origin)) {
        return problem(403, "Forbidden", { detail: "This origin may not call the API (see CORS_ORIGINS)", instance: path, requestId })
      }
      return HttpServerResponse.empty({
        status: 204,
        headers: {
          "access-control-allow-origin": allowOrigin(origin),
          "access-control-allow-methods": CORS_METHODS.join(", "),
          "access-control-allow-headers": CORS_ALLOWED_HEADERS.join(", "),
          "access-control-max-age": String(PREFLIGHT_MAX_AGE_SECONDS),
          vary: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
        }
      })
    },
    // One header copy per response (setHeaders copies them all), the request id set last as before.
    decorate: (request, response, requestId) => {
      const csp = (isHtml(response) ? pagePolicy(response) : undefined) ?? API_CSP
      const headers: Record<string, string> = { ...always, "content-security-policy": csp }
      const origin = request.headers["origin"]
      if (allowed(origin)) {
        headers["access-control-allow-origin"] = allowOrigin(origin)
        headers["access-control-expose-headers"] = EXPOSED
      }
      if (corsOrigins.length > 0 && !anyOrigin) {
        const vary = response.headers["vary"]
        headers["vary"] = vary === undefined || vary.length === 0 ? "Origin" : `${vary}, Origin`
      }
      headers["x-request-id"] = requestId
      return HttpServerResponse.setHeaders(response, headers)
    }
  }
}
