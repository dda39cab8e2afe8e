/**
 * Lint and format (`npm run lint` checks, `npm run format` fixes). Loaded natively by Node's type
 * stripping (`--flag unstable_native_nodejs_ts_config` in the scripts), no jiti.
 *
 * TypeScript 6 and 7 side by side: `tsc` (typecheck, `npm test`) is TypeScript 7 from the
 * `@typescript/native` alias; the `typescript` name is `@typescript/typescript6`, the JS compiler API
 * that typescript-eslint needs (TS 7.0 ships none; typescript-eslint 8 peers `typescript <6.1`).
 * That is the side-by-side layout TypeScript 7's release documents; drop the alias once
 * typescript-eslint supports TS 7.
 */
import js from "@eslint/js"
import effect from "@effect/eslint-plugin"
import { createNodeResolver, importX } from "eslint-plugin-import-x"
import { defineConfig } from "eslint/config"
import tseslint from "typescript-eslint"

/** dprint with Effect's settings, except the line width: this code is written to ~160 columns, not 120. */
/**
 * Seen through the same minimal type as typescript-eslint's own `CompatiblePlugin`: the plugin's rules are typed
 * with @typescript-eslint/utils' `RuleModule`, which ESLint's `Plugin` type does not accept.
 */
const effectPlugin: { readonly meta: { readonly name: string } } = effect

export const formatting = {
  indentWidth: 2,
  lineWidth: 160,
  semiColons: "asi",
  quoteStyle: "alwaysDouble",
  trailingCommas: "never",
  operatorPosition: "maintain",
  "arrowFunction.useParentheses": "force",
  // Imports stay in the order they were written (dprint would sort them).
  "module.sortImportDeclarations": "maintain",
  "importDeclaration.sortNamedImports": "maintain",
  "exportDeclaration.sortNamedExports": "maintain"
}

const tier = (folder: string) => `src/${folder}`
const MAIN = "src/main.ts"
const leaf = ["schemas", "media", "config"].map(tier)
const andMain = (folders: ReadonlyArray<string>) => [...folders.map(tier), MAIN]

/**
 * Which folder may import which: `schemas`, `media`, `config` <- `layers` <- `programs` <- `adapters` <- `main.ts`.
 * Each zone names the importers (`target`) and what they may not import (`from`), relative to `basePath`;
 * imports are resolved, so `../../programs/x.ts` from a nested layer counts as `src/programs`. `src/demo` is
 * browser code: it may import the wire schemas and media codecs, nothing server-side, and no server code imports it.
 * An import that does not resolve is skipped by the rule; `tsc`, which runs first in `npm test`, rejects it.
 */
export const importDirection = (basePath: string) =>
  defineConfig({
    name: "auralink/import-direction",
    files: ["**/*.ts"],
    plugins: { "import-x": importX },
    settings: { "import-x/resolver-next": [createNodeResolver({ extensions: [".ts", ".js"] })] },
    rules: {
      "import-x/no-restricted-paths": ["error", {
        basePath,
        zones: [
          {
            target: leaf,
            from: andMain(["layers", "programs", "adapters", "demo"]),
            message: "schemas, media and config are the leaf tier: they import only each other."
          },
          { target: tier("layers"), from: andMain(["programs", "adapters", "demo"]), message: "layers are imported by programs, never the other way." },
          { target: tier("programs"), from: andMain(["adapters", "demo"]), message: "programs are imported by adapters, never the other way." },
          { target: tier("adapters"), from: andMain(["demo"]), message: "adapters are wired by main.ts, never import it." },
          { target: MAIN, from: tier("demo"), message: "the demo is bundled for the browser, not imported by the service." },
          { target: tier("demo"), from: andMain(["config", "layers", "programs", "adapters"]), message: "the browser demo imports only schemas and media." }
        ]
      }]
    }
  })

export default defineConfig(
  { ignores: ["dist/", ".media/", ".data/", "tmp/"] },
  { linterOptions: { reportUnusedDisableDirectives: "error" } },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname }
    },
    rules: {
      // tsc reports unused locals and parameters already (noUnusedLocals, noUnusedParameters).
      "@typescript-eslint/no-unused-vars": "off",
      // The project's rule: no `as` casts (`as const` stays allowed).
      "@typescript-eslint/consistent-type-assertions": ["error", { assertionStyle: "never" }],
      // Rejecting with a caught `unknown` is a rethrow.
      "@typescript-eslint/prefer-promise-reject-errors": ["error", { allowThrowingUnknown: true }],
      // A defensive check on a value whose type says it cannot happen still prints it.
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNever: true }]
    }
  },
  {
    // Tests read JSON bodies (`Response.json()` is `any`) and assert on their fields; there the no-unsafe rules would only add casts.
    files: ["test/**"],
    rules: {
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-return": "off"
    }
  },
  {
    // The AudioWorklet is plain browser JavaScript, outside the TypeScript project.
    files: ["**/*.js"],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { AudioWorkletProcessor: "readonly", registerProcessor: "readonly" } }
  },
  importDirection(import.meta.dirname),
  {
    plugins: { "@effect": effectPlugin },
    rules: { "@effect/dprint": ["error", { config: formatting }] }
  }
)
