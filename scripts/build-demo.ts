/**
 * Bundles the browser demo (`src/demo/app.ts` with mediasoup-client, by esbuild) and copies its
 * static files into `dist/demo/` (git-ignored), which the service serves as they are
 * (`src/adapters/http/demo.ts`). Run by `npm start` (prestart), `npm run build:demo`, the image's
 * build stage and the tests' global setup. esbuild and mediasoup-client are devDependencies: after
 * `npm ci --omit=dev` there is nothing to build with, so a run there says so and changes nothing.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises"
import { basename, join } from "node:path"
import { fileURLToPath } from "node:url"
import { DEMO_BUILD_DIR, DEMO_FILES } from "../src/adapters/http/demo.ts"

const source = fileURLToPath(new URL("../src/demo/", import.meta.url))
/** Served as written (nothing inline in the page, so a CSP of 'self' serves it). */
const STATIC_FILES = ["index.html", "tap-worklet.js", "demo.css"]

export interface DemoBuild {
  readonly dir: string
  readonly files: ReadonlyArray<string>
  readonly scriptBytes: number
  readonly ms: number
}

/** Builds the demo into `outDir`; each file is renamed into place, so a server starting meanwhile never reads half of one. */
export const buildDemo = async (outDir: string = DEMO_BUILD_DIR): Promise<DemoBuild> => {
  const started = performance.now()
  const { build, stop } = await import("esbuild")
  const result = await build({
    entryPoints: [join(source, "app.ts")],
    outfile: join(outDir, "app.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["chrome110", "firefox110", "safari16"],
    minify: true,
    // A map file beside the script (fetched only by developer tools), not inlined into every page load.
    sourcemap: "linked",
    legalComments: "none",
    write: false,
    logLevel: "silent"
  }).finally(() => stop()) // esbuild's helper process is not kept for a one-off build
  const outputs = new Map<string, Uint8Array>(result.outputFiles.map((file) => [basename(file.path), file.contents]))
  for (const name of STATIC_FILES) outputs.set(name, await readFile(join(source, name)))
  const missing = DEMO_FILES.filter(({ file }) => !outputs.has(file)).map(({ file }) => file)
  if (missing.length > 0) throw new Error(`demo build produced no ${missing.join(", ")}`)

  await mkdir(outDir, { recursive: true })
  for (const [name, contents] of outputs) {
    const temporary = join(outDir, `.${name}.${process.pid}.tmp`)
    await writeFile(temporary, contents)
    await rename(temporary, join(outDir, name))
  }
  return { dir: outDir, files: [...outputs.keys()], scriptBytes: outputs.get("app.js")?.byteLength ?? 0, ms: Math.round(performance.now() - started) }
}

const isModuleNotFound = (error: unknown) =>
  error instanceof Error && "code" in error && error.code === "ERR_MODULE_NOT_FOUND" && error.message.includes("esbuild")

if (import.meta.main) {
  try {
    const built = await buildDemo()
    console.log(`demo: built ${built.dir} (app.js ${(built.scriptBytes / 1024).toFixed(0)} KiB) in ${built.ms} ms`)
  } catch (error) {
    if (!isModuleNotFound(error)) throw error
    console.log("demo: esbuild is not installed (a production install); dist/demo/ is left as it is")
  }
}
