import { Cause, Context, Effect, LogLevel, Option } from "effect"
import { FindMyWay, HttpRouter, HttpServerRequest, type HttpServerResponse } from "effect/http"
import { HttpApi, type HttpApiGroup } from "effect/http-api"
import { randomUUID } from "node:crypto"
import { Cluster } from "../Cluster.ts"
import { AppConfig } from "../Config.ts"
import { Metrics } from "../Metrics.ts"
import { browserPolicy } from "./browser-headers.ts"
import { utf8JsonBody } from "./json-body.ts"
import { problem, problemForCause } from "./problem.ts"

/** A caller's X-Request-Id is kept when it is a sane token; anything else gets a fresh UUID. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/

const pathOf = (url: string) => {
  const q = url.indexOf("?")
  return q === -1 ? url : url.slice(0, q)
}

export interface RouteSpec {
  readonly method: string
  readonly path: string
}

const isPathInput = (path: string): path is `/${string}` => path.startsWith("/")

/** Route templates (`/api/session/:id`) for metric labels, so label cardinality stays bounded. */
const routeLabeller = <Id extends string, Groups extends HttpApiGroup.Constraint>(api: HttpApi.HttpApi<Id, Groups>, extra: ReadonlyArray<RouteSpec>) => {
  const router = FindMyWay.make<string>()
  const add = ({ method, path }: RouteSpec) => {
    if (isPathInput(path)) router.on(method, path, path)
  }
  HttpApi.reflect(api, {
    onGroup: () => {},
    onEndpoint: ({ endpoint }) => add({ method: endpoint.method, path: endpoint.path })
  })
  extra.forEach(add)
  return (method: string, url: string) => router.find(method, url)?.handler ?? "unmatched"
}

/**
 * The one global middleware every request goes through: request id (accepted or generated,
 * echoed, annotated on every log line of the request), CORS preflights and the browser security
 * headers, JSON bodies held to strict UTF-8, problem details for what escaped the
 * endpoints, the request log line and the `http_request_duration_seconds` histogram.
 */
export const RequestContext = <Id extends string, Groups extends HttpApiGroup.Constraint>(
  api: HttpApi.HttpApi<Id, Groups>,
  extraRoutes: ReadonlyArray<RouteSpec>
) =>
  HttpRouter.middleware(
    Effect.gen(function*() {
      const { httpRequestDuration } = yield* Metrics
      // A page of one instance may be redirected to another (session affinity): its CSP lets it connect there.
      const cluster = yield* Effect.serviceOption(Cluster)
      const browser = browserPolicy((yield* AppConfig).http.corsOrigins, () =>
        Option.match(cluster, { onNone: () => "", onSome: (c) => c.peerOrigins().join(" ") }))
      const routeOf = routeLabeller(api, extraRoutes)
      // Read once: building the log line's annotations costs more than the request itself at LOG_LEVEL=warn.
      const logRequests = yield* LogLevel.isEnabled("Info")
      // One histogram child per label set: prom-client otherwise hashes the label object on every observe.
      const series = new Map<string, { observe: (seconds: number) => void }>()
      const observe = (method: string, route: string, status: number, seconds: number) => {
        const key = `${method} ${route} ${status}`
        let child = series.get(key)
        if (child === undefined) {
          child = httpRequestDuration.labels({ method, route, status: String(status) })
          series.set(key, child)
        }
        child.observe(seconds)
      }
      // Kept as plain combinators rather than Effect.gen, with one continuation for both outcomes, and the
      // request read straight from the fiber's context: this runs on every request.
      return (httpEffect) =>
        Effect.withFiber((fiber) => {
          const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
          const given = request.headers["x-request-id"]
          const requestId = given !== undefined && REQUEST_ID.test(given) ? given : randomUUID()
          const path = pathOf(request.url)
          const started = performance.now()
          const badRequest = (detail: string) =>
            problem(400, "Bad Request", { detail, instance: path, requestId })
          const preflight = browser.preflight(request, requestId, path)
          const finish = (response: HttpServerResponse.HttpServerResponse) => {
            const route = routeOf(request.method, path)
            const seconds = (performance.now() - started) / 1000
            observe(request.method, route, response.status, seconds)
            const decorated = browser.decorate(request, response, requestId)
            if (!logRequests) return Effect.succeed(decorated)
            return Effect.as(
              Effect.logInfo("http request").pipe(Effect.annotateLogs({
                method: request.method,
                route,
                path,
                status: response.status,
                durationMs: Math.round(seconds * 100_000) / 100
              })),
              decorated
            )
          }
          const handled = Effect.matchCauseEffect(preflight === undefined ? utf8JsonBody(request, httpEffect, badRequest) : Effect.succeed(preflight), {
            onFailure: (cause) => {
              if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause)
              const response = problemForCause(cause, requestId, path)
              return response.status >= 500 ? Effect.flatMap(Effect.logError("unhandled defect", cause), () => finish(response)) : finish(response)
            },
            onSuccess: finish
          })
          return Effect.annotateLogs(handled, "requestId", requestId)
        })
    }),
    { global: true }
  )
