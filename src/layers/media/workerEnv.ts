import { existsSync } from "node:fs"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..")
const libDir = resolve(projectRoot, ".media/usr/lib/x86_64-linux-gnu")
const bundledWorker = resolve(libDir, "mediasoup/mediasoup-worker")

/**
 * Points mediasoup at the worker that `npm install` extracted under `.media/` (see
 * scripts/install-media-worker.sh) unless MEDIASOUP_WORKER_BIN is already set (e.g. a
 * system-wide install in the Docker image). mediasoup 3.8 reads the variable once, when its
 * module is first loaded, and spawns the worker with this process's environment, so call this
 * before the first `import("mediasoup")`. Returns the worker path in use.
 */
export const useBundledMediaWorker = (): string => {
  const given = process.env["MEDIASOUP_WORKER_BIN"]
  if (given !== undefined && given !== "") return given
  if (!existsSync(bundledWorker)) {
    throw new Error(`mediasoup-worker not found at ${bundledWorker}: run \`npm ci\` (its postinstall installs it) or set MEDIASOUP_WORKER_BIN`)
  }
  process.env["MEDIASOUP_WORKER_BIN"] = bundledWorker
  const current = process.env["LD_LIBRARY_PATH"]
  process.env["LD_LIBRARY_PATH"] = current === undefined || current === "" ? libDir : `${libDir}:${current}`
  return bundledWorker
}
