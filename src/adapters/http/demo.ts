import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { access, readFile } from "node:fs/promises"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { AppConfig } from "../../layers/Config.ts"

/**
 * The browser demo (`src/demo/`), served as prebuilt static files: `scripts/build-demo.ts` bundles
 * it (esbuild, mediasoup-client) into `dist/demo/` before start (`npm start`'s prestart, the image's
 * build stage, the tests' global setup); the service only reads that directory, once, when the layer
 * is built. Plain routes, not part of the API or its OpenAPI document; absent (404) unless
 * DEMO_ENABLED (default: development only).
 */
export const DEMO_BUILD_DIR = fileURLToPath(new URL("../../../dist/demo/", import.meta.url))

/** Each route of the demo and the built file it serves (no inline style or blob: worklet, so a strict CSP of 'self' serves it). */
export const DEMO_FILES = [
  { path: "/demo", file: "index.html", contentType: "text/html; charset=utf-8" },
  { path: "/demo/app.js", file: "app.js", contentType: "text/javascript; charset=utf-8" },
  // Read when asked for, not held: it is the largest file (about 7 MB) and only a debugger asks for it.
  { path: "/demo/app.js.map", file: "app.js.map", contentType: "application/json", onRequest: true },
  { path: "/demo/tap-worklet.js", file: "tap-worklet.js", contentType: "text/javascript; charset=utf-8" },
  { path: "/demo/demo.css", file: "demo.css", contentType: "text/css; charset=utf-8" }
] as const

/** The demo's routes (for the request log's and metrics' route label). */
export const DEMO_PATHS = DEMO_FILES.map(({ path }) => path)

const noCache = { "cache-control": "no-cache" }

const readBuilt = (dir: string) =>
  Effect.tryPromise({
    // Files served on request are only looked for here: a missing one is found at start.
    try: () => Promise.all(DEMO_FILES.map((f) => ("onRequest" in f ? access(join(dir, f.file)).then(() => "") : readFile(join(dir, f.file), "utf8")))),
    catch: (cause) => (cause instanceof Error ? cause.message : String(cause))
  })

/** The demo's routes serving the files built into `dir`; when they are missing, a warning at start and 503 on every route. */
export const demoRoutes = (dir: string) =>
  Layer.unwrap(Effect.gen(function*() {
    const built = yield* Effect.result(readBuilt(dir))
    if (built._tag === "Failure") {
      yield* Effect.logWarning(`demo: not built (${built.failure}); run \`npm run build:demo\` (npm start does); /demo answers 503`)
      const notBuilt = HttpServerResponse.text("demo not built: run `npm run build:demo`", { status: 503, headers: noCache })
      return HttpRouter.addAll(DEMO_FILES.map(({ path }) => HttpRouter.route("GET", path, notBuilt)))
    }
    // One response per file, built once: every request gets the same bytes (and the page's CSP is hashed once).
    return HttpRouter.addAll(DEMO_FILES.map((f, i) =>
      HttpRouter.route(
        "GET",
        f.path,
        "onRequest" in f
          ? HttpServerResponse.file(join(dir, f.file), { contentType: f.contentType, headers: noCache }).pipe(Effect.orDie)
          : HttpServerResponse.text(built.success[i] ?? "", { contentType: f.contentType, headers: noCache })
      )
    ))
  }))

/** The demo from `dist/demo/` when DEMO_ENABLED; else no routes (404). */
export const DemoRoutes = Layer.unwrap(Effect.gen(function*() {
  const config = yield* AppConfig
  return config.demo.enabled ? demoRoutes(DEMO_BUILD_DIR) : Layer.empty
}))
