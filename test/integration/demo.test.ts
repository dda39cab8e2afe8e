import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { spawnSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { builtinModules } from "node:module"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { decodeSettings } from "../../src/config/settings.ts"
import { loadRawConfig } from "../../src/config/source.ts"
import { DEMO_BUILD_DIR, DEMO_FILES, DemoRoutes, demoRoutes } from "../../src/adapters/http/demo.ts"
import { ApiRoutes } from "../../src/adapters/http/routes.ts"
import { serveHttp } from "../../src/layers/HttpServer.ts"
import { logFirstRunNotes } from "../../src/programs/first-run.ts"
import { baseUrl, capturedLogs, testConfig } from "../support/http.ts"
import { onFreshDatabase } from "../support/server.ts"

/**
 * The browser demo is prebuilt (`scripts/build-demo.ts`, run by the global setup as by `npm start`)
 * and served as files: the bytes served are the files in dist/demo/; nothing is bundled per request
 * and the service's own imports need no devDependency (esbuild, mediasoup-client). DEMO_ENABLED
 * (default: development only) decides whether /demo exists at all.
 */

const STRONG_SECRET = "Zx4mQ9vT2kLp7RwE1nYb6HcJ3sGd8FaU0oIt5eVr"
const PRODUCTION = { ENVIRONMENT: "production", JWT_SECRET: STRONG_SECRET, MEDIASOUP_LISTEN_IP: "127.0.0.1" } as const

const get = (path: string) =>
  Effect.gen(function*() {
    const base = yield* baseUrl
    return yield* Effect.promise(async () => {
      const response = await fetch(`${base}${path}`)
      return { status: response.status, type: response.headers.get("content-type"), bytes: new Uint8Array(await response.arrayBuffer()) }
    })
  })

const Manifest = Schema.Struct({ dependencies: Schema.Record(Schema.String, Schema.String) })

const demoStatuses = Effect.forEach(DEMO_FILES, ({ path }) => Effect.map(get(path), ({ status }) => [path, status] as const))
const allAre = (status: number) => DEMO_FILES.map(({ path }) => [path, status] as const)

const demoOnly = (env: Record<string, string>) => serveHttp(DemoRoutes, 0, "127.0.0.1").pipe(Layer.provideMerge(testConfig(env)))
const fromDir = (dir: string) => serveHttp(demoRoutes(dir), 0, "127.0.0.1").pipe(Layer.provideMerge(testConfig()))

describe("browser demo (prebuilt, DEMO_ENABLED)", () => {
  layer(demoOnly({}))("development (the default): on", (it) => {
    it.effect("every route answers its prebuilt file from dist/demo/, byte for byte", () =>
      Effect.gen(function*() {
        for (const { path, file, contentType } of DEMO_FILES) {
          const served = yield* get(path)
          assert.strictEqual(served.status, 200, path)
          assert.strictEqual(served.type, contentType, path)
          assert.deepStrictEqual(Buffer.from(served.bytes), readFileSync(join(DEMO_BUILD_DIR, file)), path)
        }
        // The bundle is minified with its map beside it, not inlined (the page loads ~0.5 MB, not ~10 MB).
        const script = new TextDecoder().decode((yield* get("/demo/app.js")).bytes)
        assert.isTrue(script.trimEnd().endsWith("//# sourceMappingURL=app.js.map"))
        assert.isBelow(script.length, 2_000_000)
      }))
  })

  // Hand-written files no bundler would produce: what is served is what the directory holds.
  const sentinelDir = mkdtempSync(join(tmpdir(), "auralink-demo-files-"))
  for (const { file } of DEMO_FILES) writeFileSync(join(sentinelDir, file), `/* ${file}: written by the test, not bundled */\n`)
  layer(fromDir(sentinelDir))("served from the build directory", (it) => {
    it.effect("a request reads the built files, it builds nothing", () =>
      Effect.gen(function*() {
        for (const { path, file } of DEMO_FILES) {
          const served = yield* get(path)
          assert.strictEqual(new TextDecoder().decode(served.bytes), `/* ${file}: written by the test, not bundled */\n`, path)
        }
      }))
  })

  const emptyDir = mkdtempSync(join(tmpdir(), "auralink-demo-none-"))
  mkdirSync(join(emptyDir, "nothing-here"))
  layer(fromDir(emptyDir))("enabled but not built", (it) => {
    it.effect("the service starts and every demo route answers 503 saying how to build it", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* demoStatuses, allAre(503))
        assert.include(new TextDecoder().decode((yield* get("/demo")).bytes), "npm run build:demo")
      }))
  })

  layer(demoOnly({ DEMO_ENABLED: "false" }))("DEMO_ENABLED=false", (it) => {
    it.effect("/demo and its assets are 404", () => Effect.map(demoStatuses, (statuses) => assert.deepStrictEqual(statuses, allAre(404))))
  })

  layer(demoOnly({ ENVIRONMENT: "staging" }))("staging", (it) => {
    it.effect("off by default: 404", () => Effect.map(demoStatuses, (statuses) => assert.deepStrictEqual(statuses, allAre(404))))
  })

  layer(onFreshDatabase(serveHttp(Layer.mergeAll(ApiRoutes, DemoRoutes), 0, "127.0.0.1"), PRODUCTION))("production, the whole HTTP stack", (it) => {
    it.effect("off by default: the demo is 404 while the API answers", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* demoStatuses, allAre(404))
        assert.strictEqual((yield* get("/health")).status, 200)
      }))
  })

  layer(demoOnly({ ...PRODUCTION, DEMO_ENABLED: "true" }))("production with DEMO_ENABLED=true", (it) => {
    it.effect("the operator can turn it on", () => Effect.map(demoStatuses, (statuses) => assert.deepStrictEqual(statuses, allAre(200))))
  })

  it.effect("DEMO_ENABLED: on in development only by default, auralink.demo.enabled in HOCON, a bad value named", () =>
    Effect.gen(function*() {
      const enabled = (env: Record<string, string>) => Effect.map(Effect.flatMap(loadRawConfig(env), decodeSettings), (s) => s.demo.enabled)
      assert.deepStrictEqual(
        [yield* enabled({}), yield* enabled({ ENVIRONMENT: "staging" }), yield* enabled(PRODUCTION), yield* enabled({ DEMO_ENABLED: "false" })],
        [true, false, false, false]
      )
      const conf = join(mkdtempSync(join(tmpdir(), "auralink-conf-")), "auralink.conf")
      writeFileSync(conf, "auralink { demo { enabled = true } }")
      assert.isTrue(yield* enabled({ ...PRODUCTION, AURALINK_CONFIG: conf }))
      const error = yield* Effect.flip(enabled({ DEMO_ENABLED: "maybe" }))
      assert.strictEqual(error.key, "DEMO_ENABLED")
      assert.include(error.message, "DEMO_ENABLED=\"maybe\": expected ")
    }))

  it.effect("the development key's start-up line points at the demo only when it is on", () =>
    Effect.gen(function*() {
      const keyLine = (env: Record<string, string>) =>
        Effect.gen(function*() {
          const logs = capturedLogs()
          const settings = yield* Effect.flatMap(loadRawConfig({ PORT: "8080", ...env }), decodeSettings)
          yield* logFirstRunNotes(settings).pipe(Effect.provide(logs.layer))
          return String(logs.lines.find((line) => line["event"] === "development_provisioning_key")?.["msg"])
        })
      assert.include(yield* keyLine({}), "paste it into the demo at http://localhost:8080/demo")
      const off = yield* keyLine({ DEMO_ENABLED: "false" })
      assert.notInclude(off, "/demo")
      assert.include(off, "DEMO_ENABLED=false")
    }))

  it("the service's own imports (everything src/main.ts loads) are production dependencies: no esbuild, no mediasoup-client", () => {
    const root = new URL("../../", import.meta.url)
    // A child node records every bare specifier that a file under src/ imports while src/main.ts loads (main does not run on import).
    const probe = `
      import { registerHooks } from "node:module"
      const seen = new Set()
      registerHooks({ resolve(specifier, context, next) {
        if (context.parentURL?.startsWith(process.env.SRC_URL) && !/^(\\.|\\/|node:|file:)/.test(specifier)) seen.add(specifier)
        return next(specifier, context)
      } })
      await import(process.env.MAIN_URL)
      process.stdout.write(JSON.stringify([...seen]))
      process.exit(0)`
    const child = spawnSync(process.execPath, ["--input-type=module", "-e", probe], {
      env: { ...process.env, SRC_URL: new URL("src/", root).href, MAIN_URL: new URL("src/main.ts", root).href },
      encoding: "utf8",
      timeout: 60_000
    })
    assert.strictEqual(child.status, 0, child.stderr)
    const printed: unknown = JSON.parse(child.stdout)
    const specifiers = Array.isArray(printed) ? printed.filter((s): s is string => typeof s === "string") : []
    const packageOf = (specifier: string) => specifier.split("/").slice(0, specifier.startsWith("@") ? 2 : 1).join("/")
    const packages = [...new Set(specifiers.filter((s) => !builtinModules.includes(s)).map(packageOf))].sort()
    const manifest = Schema.decodeUnknownSync(Manifest)(JSON.parse(readFileSync(new URL("package.json", root), "utf8")))
    // The probe saw the graph (effect and jose are certainly in it).
    assert.includeMembers(packages, ["effect", "jose"])
    assert.deepStrictEqual(packages.filter((name) => !(name in manifest.dependencies)), [])
    // mediasoup is imported when the media server starts (after its worker path is set), not at load.
    assert.property(manifest.dependencies, "mediasoup")
    assert.notInclude(packages, "esbuild")
    assert.notInclude(packages, "mediasoup-client")
  })
})
