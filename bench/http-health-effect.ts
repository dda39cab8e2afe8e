// Floors for http-health: GET /health on effect's Node HTTP server without the service, as a bare
// HttpRouter route (`router`) or as an HttpApi endpoint with the same Liveness schema and the
// ProblemDetails middleware (`api`), no global middleware. They tell how much of the service's cost
// is effect/http and HttpApi themselves and how much is ours.
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware } from "effect/http-api"
import { createServer } from "node:http"
import { Liveness } from "../src/schemas/health.ts"

const liveness = () => ({ status: "healthy" as const, timestamp: Date.now() })

const Router = HttpRouter.add("GET", "/health", Effect.sync(() => HttpServerResponse.text(JSON.stringify(liveness()), { contentType: "application/json" })))

class System extends HttpApiGroup.make("system", { topLevel: true }).add(HttpApiEndpoint.get("health", "/health", { success: Liveness })) {}
class Api extends HttpApi.make("floor").add(System).middleware(HttpApiMiddleware.ProblemDetails) {}
const ApiRoutes = HttpApiBuilder.layer(Api).pipe(
  Layer.provide(HttpApiBuilder.group(Api, "system", (handlers) => handlers.handle("health", () => Effect.sync(liveness)))),
  Layer.provide(HttpApiMiddleware.layerProblemDetails({ includeDetails: true }))
)

const routes = process.argv[2] === "api" ? ApiRoutes : Router
HttpRouter.serve(routes, { disableLogger: true, disableListenLog: true }).pipe(
  Layer.provide(NodeHttpServer.layer(createServer, { port: Number(process.env["PORT"]), host: "127.0.0.1" })),
  Layer.launch,
  NodeRuntime.runMain
)
