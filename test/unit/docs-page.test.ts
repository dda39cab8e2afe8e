import { assert, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import { spawnSync } from "node:child_process"

const Page = Schema.Struct({ status: Schema.Number, type: Schema.NullOr(Schema.String), length: Schema.Number, sha256: Schema.String })
const Probe = Schema.Struct({ atStart: Schema.Number, after: Schema.Number, first: Page, second: Page, reference: Page })

describe("docs page", () => {
  // A child node (nothing loaded before) that records when Scalar's bundle module is loaded.
  it("imports Scalar's bundle on the first request for /docs, not when the routes are built, and serves HttpApiScalar.layer's page", () => {
    const probe = `
      import { registerHooks } from "node:module"
      let loads = 0
      registerHooks({ load(url, context, next) {
        if (url.endsWith("/http-api/internal/httpApiScalar.js")) loads++
        return next(url, context)
      } })
      const { createHash } = await import("node:crypto")
      const { HttpRouter } = await import("effect/http")
      const { HttpApi, HttpApiScalar } = await import("effect/http-api")
      const { docsPage } = await import(process.env.HTTP_SERVER_URL)
      const api = HttpApi.make("probe")
      const get = async (web, path) => {
        const response = await web.handler(new Request("http://localhost" + path))
        const body = await response.text()
        return { status: response.status, type: response.headers.get("content-type"), length: body.length, sha256: createHash("sha256").update(body).digest("hex") }
      }
      const lazy = HttpRouter.toWebHandler(docsPage(api, "/docs"), { disableLogger: true })
      await get(lazy, "/nope") // the routes are built on the first request
      const atStart = loads
      const first = await get(lazy, "/docs")
      const second = await get(lazy, "/docs")
      const eager = HttpRouter.toWebHandler(HttpApiScalar.layer(api, { path: "/docs", scalar: { withDefaultFonts: false } }), { disableLogger: true })
      const reference = await get(eager, "/docs")
      await lazy.dispose()
      await eager.dispose()
      process.stdout.write(JSON.stringify({ atStart, after: loads, first, second, reference }))`
    const child = spawnSync(process.execPath, ["--input-type=module", "-e", probe], {
      env: { ...process.env, HTTP_SERVER_URL: new URL("../../src/layers/HttpServer.ts", import.meta.url).href },
      encoding: "utf8",
      timeout: 30_000,
      maxBuffer: 64 * 1024 * 1024
    })
    assert.strictEqual(child.status, 0, child.stderr)
    const { atStart, after, first, second, reference } = Schema.decodeUnknownSync(Probe)(JSON.parse(child.stdout))
    assert.strictEqual(atStart, 0, "not loaded when the routes were built")
    assert.strictEqual(after, 1, "loaded once, by the first request")
    assert.strictEqual(reference.status, 200)
    assert.include(reference.type ?? "", "text/html")
    assert.isAbove(reference.length, 1_000_000, "Scalar inline")
    assert.deepStrictEqual(first, reference)
    assert.deepStrictEqual(second, reference)
  })
})
