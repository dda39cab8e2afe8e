import { assert, describe, it } from "@effect/vitest"
import { ESLint } from "eslint"
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"
import tseslint from "typescript-eslint"
import config, { importDirection } from "../../eslint.config.ts"

const RULE = "import-x/no-restricted-paths"
const repoRoot = fileURLToPath(new URL("../../", import.meta.url))

/** One module per tier, in a throwaway tree: the rule resolves imports, so each target must exist. */
const modules = {
  schemas: "src/schemas/s.ts",
  media: "src/media/m.ts",
  config: "src/config/c.ts",
  layers: "src/layers/nested/l.ts",
  programs: "src/programs/p.ts",
  adapters: "src/adapters/http/a.ts",
  main: "src/main.ts",
  demo: "src/demo/d.ts"
} as const
type Tier = keyof typeof modules
const tiers = Object.keys(modules).filter((name): name is Tier => name in modules)

const leaf: ReadonlyArray<Tier> = ["schemas", "media", "config"]
/** The import direction as the issue draws it: schemas, media, config <- layers <- programs <- adapters <- main. */
const allowed: Record<Tier, ReadonlyArray<Tier>> = {
  schemas: leaf,
  media: leaf,
  config: leaf,
  layers: [...leaf, "layers"],
  programs: [...leaf, "layers", "programs"],
  adapters: [...leaf, "layers", "programs", "adapters"],
  main: [...leaf, "layers", "programs", "adapters", "main"],
  demo: ["schemas", "media", "demo"]
}

/** An importer beside each tier's module (`main.ts` is its own importer, so it imports itself). */
const importerOf = (tier: Tier) => (tier === "main" ? modules.main : join(dirname(modules[tier]), "Example.ts"))

const specifier = (from: string, to: string) => {
  const path = relative(dirname(from), to)
  return path.startsWith(".") ? path : `./${path}`
}

/** Only the import rule, on the TypeScript parser without type information: fast. */
const linterFor = (basePath: string) =>
  new ESLint({
    cwd: basePath,
    overrideConfigFile: true,
    overrideConfig: [{ files: ["**/*.ts"], languageOptions: { parser: tseslint.parser } }, ...importDirection(basePath)]
  })

const violations = async (eslint: ESLint, code: string, filePath: string) => {
  const [result] = await eslint.lintText(code, { filePath })
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? "fatal"}: ${m.message}`)
}

describe("lint: import direction", () => {
  it("every tier may import exactly what the layer picture allows, and any other import is an error", async () => {
    const root = await mkdtemp(join(tmpdir(), "lint-rules-"))
    try {
      for (const path of Object.values(modules)) {
        await mkdir(join(root, dirname(path)), { recursive: true })
        await writeFile(join(root, path), "export const value = 1\n")
      }
      const eslint = linterFor(root)
      const wrong: Array<string> = []
      for (const importer of tiers) {
        for (const target of tiers) {
          const file = join(root, importerOf(importer))
          const messages = await violations(eslint, `import { value } from "${specifier(file, join(root, modules[target]))}"\nexport const x = value\n`, file)
          const expected = allowed[importer].includes(target) ? 0 : 1
          if (messages.length !== expected || messages.some((m) => !m.startsWith(RULE))) {
            wrong.push(`${importer} -> ${target}: expected ${expected} violation(s), got ${JSON.stringify(messages)}`)
          }
        }
      }
      assert.deepStrictEqual(wrong, [])
    } finally {
      await rm(root, { recursive: true, force: true })
    }
  })

  it("in this repository: a layer importing a program is an error (also as `import type` and `export from`); a layer importing a schema is not", async () => {
    const eslint = linterFor(repoRoot)
    const layer = join(repoRoot, "src/layers/aicore/Example.ts")
    const intoPrograms = [
      `import { activateSession } from "../../programs/sessions/activate.ts"\nexport const x = activateSession\n`,
      `import type { activateSession } from "../../programs/sessions/activate.ts"\nexport type X = typeof activateSession\n`,
      `export { activateSession } from "../../programs/sessions/activate.ts"\n`
    ]
    for (const code of intoPrograms) {
      const messages = await violations(eslint, code, layer)
      assert.strictEqual(messages.length, 1, code)
      assert.include(messages[0], `${RULE}: Unexpected path "../../programs/sessions/activate.ts" imported in restricted zone`)
    }
    assert.deepStrictEqual(await violations(eslint, `import type { SessionId } from "../../schemas/ids.ts"\nexport type X = SessionId\n`, layer), [])
  })

  it("the repository's eslint config applies the rule", () => {
    assert.isTrue(config.some((block) => block.name === "auralink/import-direction" && block.rules?.[RULE] !== undefined))
  })
})
