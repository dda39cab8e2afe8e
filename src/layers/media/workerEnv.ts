import { existsSync } from "node:fs"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..")
const bundledWorker = resolve(projectRoot, ".media/mediasoup-worker")

/**
 * Points mediasoup at the worker that `npm install` left at `.media/mediasoup-worker` (a symlink
 * to a cached build, see scripts/install-media-worker.sh) unless MEDIASOUP_WORKER_BIN is already
 * set (e.g. the Docker image's). The worker needs no LD_LIBRARY_PATH: its non-system libraries
 * are linked statically. mediasoup reads the variable once, when its module is first loaded, so
 * call this before the first `import("mediasoup")`. Returns the worker path in use.
 */
export const useBundledMediaWorker = (): string => {
  const given = process.env["MEDIASOUP_WORKER_BIN"]
  if (given !== undefined && given !== "") return given
  if (!existsSync(bundledWorker)) {
    throw new Error(`mediasoup-worker not found at ${bundledWorker}: run \`npm ci\` (its postinstall installs it) or set MEDIASOUP_WORKER_BIN`)
  }
  process.env["MEDIASOUP_WORKER_BIN"] = bundledWorker
  return bundledWorker
}
