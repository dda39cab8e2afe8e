/**
 * Fills Node's compile cache for the service's modules (`COMPILE_CACHE_DIR`, see
 * `src/config/node-flags.ts`): a child with the service's flags and environment imports
 * `src/main.ts` (which starts nothing when imported) and writes the cache as it exits. Entries
 * already there and current are only read (~1 s). Run by the image build and the benches, so the
 * service they start never starts on a cold cache (`npm start` fills it as the service exits).
 */
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { asServiceNode } from "../src/config/node-flags.ts"

const root = fileURLToPath(new URL("..", import.meta.url))

/** Runs the child in the package root (the cache path is relative to it); throws if it failed. */
export const warmCompileCache = (): void => {
  const node = asServiceNode(["--input-type=module", "-e", "await import('./src/main.ts')"])
  const child = spawnSync(process.execPath, node.args, { cwd: root, env: node.env, stdio: "inherit" })
  if (child.status !== 0) throw new Error(`warming the compile cache failed (exit ${child.status ?? child.signal})`)
}

if (import.meta.main) warmCompileCache()
