// `npm run bench` runs every bench/*.bench.ts; `npm run bench -- NAME` runs bench/NAME.bench.ts.
// Each prints its figures, then one summary line `NAME key=value ... ratio=R`.
import { readdirSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { warmCompileCache } from "../scripts/warm-compile-cache.ts"
import type { BenchResult } from "./support.ts"

const here = dirname(fileURLToPath(import.meta.url))
const all = readdirSync(here).filter((f) => f.endsWith(".bench.ts")).map((f) => f.slice(0, -".bench.ts".length)).sort()
const wanted = process.argv.slice(2)
const unknown = wanted.filter((name) => !all.includes(name))
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(", ")}; available: ${all.join(", ")}`)
  process.exit(2)
}

const isBench = (m: unknown): m is { run: () => Promise<BenchResult> } => typeof m === "object" && m !== null && "run" in m && typeof m.run === "function"

// The services start as `npm start` starts them: on a filled compile cache.
warmCompileCache()

for (const name of wanted.length > 0 ? wanted : all) {
  console.log(`== ${name}`)
  const module: unknown = await import(pathToFileURL(join(here, `${name}.bench.ts`)).href)
  if (!isBench(module)) throw new Error(`bench/${name}.bench.ts exports no run()`)
  console.log((await module.run()).summary)
}
