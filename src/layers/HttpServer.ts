// The module, not the package index: that would load every Node module of the package (Redis client, undici, ws, cluster) at start.
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { ByteSize, Duration, Effect, Layer, Option } from "effect"
import { HttpIncomingMessage, HttpRouter, HttpServerResponse } from "effect/http"
import { type HttpApi, HttpApiBuilder, type HttpApiGroup, HttpApiMiddleware, HttpApiScalar } from "effect/http-api"
import { AppConfig } from "./Config.ts"
import { createListener } from "./http/listener.ts"
import { RequestContext, type RouteSpec } from "./http/requestContext.ts"
import { ShutdownGate } from "./http/shutdown-gate.ts"
import { Metrics } from "./Metrics.ts"

/** An API's endpoints with their handlers, its OpenAPI document and docs page, and the global middleware. */
export const apiRoutes = <Id extends string, Groups extends HttpApiGroup.Constraint, E, R, M = never, ME = never, MR = never>(
  api: HttpApi.HttpApi<Id, Groups>,
  handlers: Layer.Layer<HttpApiGroup.ToService<Id, Groups>, E, R>,
  /** The API's own middleware implementations (e.g. Authentication). */
  middleware?: Layer.Layer<M, ME, MR>,
  /** Routes served beside the API (outside its OpenAPI document), for the route metric label. */
  plainRoutes: ReadonlyArray<RouteSpec> = []
) =>
  Layer.mergeAll(
    HttpApiBuilder.layer(api, { openapiPath: "/openapi.json" }).pipe(
      Layer.provide(handlers),
      // provideMerge: the router also resolves the middleware when it builds the routes.
      Layer.provideMerge(Layer.mergeAll(HttpApiMiddleware.layerProblemDetails({ includeDetails: true }), middleware ?? Layer.empty))
    ),
    docsPage(api, "/docs"),
    RequestContext(api, [{ method: "GET", path: "/docs" }, { method: "GET", path: "/openapi.json" }, ...plainRoutes])
  )

/**
 * Scalar's docs page at `path`, as `HttpApiScalar.layer` serves it, but with Scalar's bundle (megabytes
 * of module source and string) imported on the page's first request instead of at start: the page is
 * built by that layer, on a router of its own, when first asked for, and kept.
 */
export const docsPage = <Id extends string, Groups extends HttpApiGroup.Constraint>(api: HttpApi.HttpApi<Id, Groups>, path: `/${string}`) =>
  HttpRouter.use(Effect.fnUntraced(function*(router) {
    const scope = yield* Effect.scope
    const build = Effect.gen(function*() {
      const own = yield* HttpRouter.make
      // No fonts from fonts.scalar.com: the page's CSP loads nothing from elsewhere.
      const page = HttpApiScalar.layer(api, { path, scalar: { withDefaultFonts: false } })
      yield* Effect.provideService(Layer.buildWithScope(page, scope), HttpRouter.HttpRouter, own)
      return own.asHttpEffect()
    })
    const handler = yield* Effect.cached(build)
    yield* router.add("GET", path, Effect.flatten(handler))
  }))

/**
 * Serves `routes` on a Node HTTP listener (exposing its `HttpServer`, whose address tells the
 * bound port when PORT=0); the body limit, timeouts, connection cap and graceful-close deadline come from config.
 */
export const serveHttp = <E, R>(routes: Layer.Layer<never, E, R>, port: number, host: string) =>
  Layer.unwrap(Effect.gen(function*() {
    const config = yield* AppConfig
    // Path parameters up to a percent-encoded 256-character room name or identity (find-my-way's default is 100).
    return HttpRouter.serve(routes, { disableLogger: true, routerConfig: { maxParamLength: 3072 } }).pipe(
      Layer.provideMerge(NodeHttpServer.layer(() => createListener(config.http), {
        port,
        host,
        gracefulShutdownTimeout: Duration.millis(config.service.shutdownTimeoutMs)
      })),
      Layer.provide(Layer.succeed(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(config.http.bodyLimitBytes)))
    )
  }))

/** `/metrics` alone on METRICS_PORT, for scrapers kept off the public listener. */
const MetricsListener = Layer.unwrap(Effect.gen(function*() {
  const config = yield* AppConfig
  if (Option.isNone(config.http.metricsPort)) return Layer.empty
  const route = HttpRouter.add(
    "GET",
    "/metrics",
    Effect.gen(function*() {
      const { registry } = yield* Metrics
      const text = yield* Effect.promise(() => registry.metrics())
      return HttpServerResponse.text(text, { contentType: registry.contentType, headers: { "x-content-type-options": "nosniff" } })
    })
  )
  // Built for its effect only, so its HttpServer does not shadow the public listener's.
  return Layer.effectDiscard(Layer.build(serveHttp(route, config.http.metricsPort.value, config.http.host)))
}))

/**
 * The public HTTP listener on PORT serving `routes` (the composition root's: the API, the demo)
 * behind the shutdown gate, and the optional metrics listener.
 */
export const httpListeners = <E, R>(routes: Layer.Layer<never, E, R>) =>
  Layer.unwrap(Effect.gen(function*() {
    const config = yield* AppConfig
    return Layer.mergeAll(serveHttp(Layer.mergeAll(routes, ShutdownGate), config.http.port, config.http.host), MetricsListener)
  }))
