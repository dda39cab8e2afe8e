import { afterAll, assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

// scripts/install-media-worker.sh's cheap paths, in throwaway copies of the project: the cache
// key, a given MEDIASOUP_WORKER_BIN, and a cached build (a stand-in worker that exits 41 like the
// real one run without MEDIASOUP_VERSION). None of them builds, downloads or runs mediasoup.
const dir = mkdtempSync(join(tmpdir(), "install-media-worker-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** A copy of the script and its recipe, with a node_modules/mediasoup of `version`. */
const project = (name: string, version = "3.27.1") => {
  const root = join(dir, name)
  mkdirSync(join(root, "node_modules/mediasoup"), { recursive: true })
  cpSync("scripts/install-media-worker.sh", join(root, "scripts/install-media-worker.sh"))
  cpSync("scripts/apt-archive.sh", join(root, "scripts/apt-archive.sh"))
  cpSync("scripts/mediasoup-worker", join(root, "scripts/mediasoup-worker"), { recursive: true })
  writeFileSync(join(root, "node_modules/mediasoup/package.json"), `{\n  "name": "mediasoup",\n  "version": "${version}"\n}\n`)
  return root
}

const run = (root: string, env: Record<string, string>, ...args: Array<string>) => {
  const { MEDIASOUP_WORKER_BIN: _, XDG_CACHE_HOME: __, ...rest } = process.env
  return spawnSync("bash", [join(root, "scripts/install-media-worker.sh"), ...args], {
    encoding: "utf8",
    env: { ...rest, HOME: join(dir, "home"), ...env }
  })
}
const cacheDir = (root: string, env: Record<string, string> = { XDG_CACHE_HOME: join(dir, "cache") }) => {
  const result = run(root, env, "--print-cache-dir")
  assert.strictEqual(result.status, 0, result.stderr)
  return result.stdout.trim()
}

describe("scripts/install-media-worker.sh", () => {
  it("caches by mediasoup version and a hash of the recipe, wherever the checkout is", () => {
    const a = project("a")
    const key = cacheDir(a)
    assert.match(key, new RegExp(`^${join(dir, "cache")}/auralink/mediasoup-worker/3\\.27\\.1-[0-9a-f]{12}$`))
    assert.strictEqual(cacheDir(project("b")), key)
    assert.strictEqual(cacheDir(a, { HOME: join(dir, "elsewhere") }), join(dir, "elsewhere/.cache/auralink/mediasoup-worker", key.split("/").at(-1) ?? ""))

    const newer = project("newer", "3.27.2")
    assert.strictEqual(cacheDir(newer).replace("3.27.2-", "3.27.1-"), key)

    const patched = project("patched")
    writeFileSync(join(patched, "scripts/mediasoup-worker/patches/0002-dtls-bio-callback-return.patch"), "changed\n", { flag: "a" })
    assert.notStrictEqual(cacheDir(patched), key)
    const added = project("added")
    writeFileSync(join(added, "scripts/mediasoup-worker/subprojects/extra.txt"), "")
    assert.notStrictEqual(cacheDir(added), key)
  })

  it("MEDIASOUP_WORKER_BIN given: .media/mediasoup-worker links to it, nothing else runs", () => {
    const root = project("given")
    const bin = join(dir, "given-worker")
    writeFileSync(bin, "#!/bin/sh\nexit 41\n")
    chmodSync(bin, 0o755)
    const result = run(root, { MEDIASOUP_WORKER_BIN: bin, XDG_CACHE_HOME: join(dir, "cache") })
    assert.strictEqual(result.status, 0, result.stderr)
    assert.strictEqual(readlinkSync(join(root, ".media/mediasoup-worker")), bin)

    const missing = run(root, { MEDIASOUP_WORKER_BIN: join(dir, "nowhere"), XDG_CACHE_HOME: join(dir, "cache") })
    assert.strictEqual(missing.status, 1)
    assert.include(missing.stderr, "is not an executable file")
  })

  it("a cached build that starts is linked; the old 3.8.4 tree under .media/usr/ goes", () => {
    const root = project("cached")
    const cached = cacheDir(root)
    mkdirSync(cached, { recursive: true })
    writeFileSync(join(cached, "mediasoup-worker"), "#!/bin/sh\nexit 41\n")
    chmodSync(join(cached, "mediasoup-worker"), 0o755)
    mkdirSync(join(root, ".media/usr/lib"), { recursive: true })
    const result = run(root, { XDG_CACHE_HOME: join(dir, "cache") })
    assert.strictEqual(result.status, 0, result.stderr)
    assert.include(result.stdout, "cached build for mediasoup 3.27.1")
    assert.strictEqual(readlinkSync(join(root, ".media/mediasoup-worker")), join(cached, "mediasoup-worker"))
    assert.strictEqual(spawnSync("test", ["-e", join(root, ".media/usr")]).status, 1)
  })
})
