import { afterAll, assert, describe, it } from "@effect/vitest"
import { execFileSync, spawnSync } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const dir = mkdtempSync(join(tmpdir(), "apt-archive-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const codename = execFileSync("bash", ["-c", ". /etc/os-release && echo $VERSION_CODENAME"], { encoding: "utf8" }).trim()

/** Runs scripts/apt-archive.sh with apt reading only `sources` (a one-line list or a deb822 file). */
const archiveFor = (name: string, sources: string) => {
  const parts = join(dir, `${name}.d`)
  mkdirSync(parts, { recursive: true })
  const list = join(dir, `${name}.list`)
  if (name.endsWith("822")) writeFileSync(join(parts, "debian.sources"), sources)
  else writeFileSync(list, sources)
  const config = join(dir, `${name}.conf`)
  writeFileSync(config, `Dir::Etc::sourcelist "${list}";\nDir::Etc::sourceparts "${parts}";\n`)
  return spawnSync("bash", ["scripts/apt-archive.sh"], { encoding: "utf8", env: { ...process.env, APT_CONFIG: config } })
}

describe("scripts/apt-archive.sh: the Debian archive comes from the machine's apt sources, never a hard-coded host", () => {
  it("one-line sources.list: the mirror serving this release", () => {
    const run = archiveFor(
      "one-line",
      `deb http://security.example.net/debian-security ${codename}-security main\ndeb http://mirror.example.org/debian ${codename} main\n`
    )
    assert.strictEqual(run.status, 0, run.stderr)
    assert.strictEqual(run.stdout.trim(), "http://mirror.example.org/debian")
  })

  it("deb822 .sources, as Debian images ship them: a snapshot URI", () => {
    const run = archiveFor(
      "deb822",
      `Types: deb\nURIs: http://snapshot.example.org/archive/debian/20250520T000000Z\nSuites: ${codename} ${codename}-updates\nComponents: main\n`
    )
    assert.strictEqual(run.status, 0, run.stderr)
    assert.strictEqual(run.stdout.trim(), "http://snapshot.example.org/archive/debian/20250520T000000Z")
  })

  it("no source for this release: a clear error, exit 1", () => {
    const run = archiveFor("none", "")
    assert.strictEqual(run.status, 1)
    assert.include(run.stderr, `no apt source for ${codename}`)
  })
})
