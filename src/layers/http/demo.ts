import { build, stop } from "esbuild"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { readFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"

/**
 * The browser demo (`src/demo/`): `GET /demo` serves the page and `GET /demo/app.js` its script,
 * bundled with esbuild (mediasoup-client and all) on the first request and kept in memory, so
 * `npm start` needs no build step. Plain routes, not part of the API or its OpenAPI document.
 */
const entry = fileURLToPath(new URL("../../demo/app.ts", import.meta.url))
const page = fileURLToPath(new URL("../../demo/index.html", import.meta.url))
/** Static files beside the page (no inline style or blob: worklet, so a strict CSP of 'self' serves the demo). */
const worklet = fileURLToPath(new URL("../../demo/tap-worklet.js", import.meta.url))
const stylesheet = fileURLToPath(new URL("../../demo/demo.css", import.meta.url))

/** The demo script as one ES module for current browsers. */
export const bundleDemo = async (): Promise<string> => {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["chrome110", "firefox110", "safari16"],
    minify: true,
    sourcemap: "inline",
    legalComments: "none",
    write: false,
    logLevel: "silent"
  }).finally(() => stop()) // esbuild's helper process (hundreds of MB) is not kept for a one-off build
  const file = result.outputFiles[0]
  if (file === undefined) throw new Error("esbuild produced no output")
  return file.text
}

/** The demo's routes (for the request log's and metrics' route label). */
export const DEMO_PATHS = ["/demo", "/demo/app.js", "/demo/tap-worklet.js", "/demo/demo.css"] as const

const noStore = { "cache-control": "no-cache" }

export const DemoRoutes = Layer.unwrap(Effect.gen(function*() {
  // Built once, on first use (concurrent first requests share the build); a failed build is retried on the next request.
  let pending: Promise<string> | undefined
  const script = Effect.tryPromise({
    try: () => {
      pending ??= bundleDemo().catch((error: unknown) => {
        pending = undefined
        throw error
      })
      return pending
    },
    catch: (cause) => new Error(`demo bundle failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
  })
  const html = yield* Effect.cached(Effect.promise(() => readFile(page, "utf8")))
  const failed = (error: Error) =>
    Effect.logError("demo: bundling failed", error).pipe(
      Effect.as(HttpServerResponse.text(`demo unavailable: ${error.message}`, { status: 500 }))
    )
  const file = (path: string, contentType: string) =>
    Effect.map(Effect.cached(Effect.promise(() => readFile(path, "utf8"))), (body) =>
      Effect.map(body, (text) => HttpServerResponse.text(text, { contentType, headers: noStore })))
  return Layer.mergeAll(
    HttpRouter.add("GET", DEMO_PATHS[2], yield* file(worklet, "text/javascript; charset=utf-8")),
    HttpRouter.add("GET", DEMO_PATHS[3], yield* file(stylesheet, "text/css; charset=utf-8")),
    HttpRouter.add("GET", DEMO_PATHS[0], Effect.map(html, (body) => HttpServerResponse.text(body, { contentType: "text/html; charset=utf-8", headers: noStore }))),
    HttpRouter.add(
      "GET",
      DEMO_PATHS[1],
      script.pipe(
        Effect.map((body) => HttpServerResponse.text(body, { contentType: "text/javascript; charset=utf-8", headers: noStore })),
        Effect.catch(failed)
      )
    )
  )
}))
