import { assert, describe, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { COMPILE_CACHE_DIR, NODE_ENV_VARS, NODE_FLAGS } from "../../src/config/node-flags.ts"
import { isRecord } from "../support/kubernetes.ts"

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8")
const scripts = (): Record<string, unknown> => {
  const manifest: unknown = JSON.parse(read("package.json"))
  const found = isRecord(manifest) ? manifest["scripts"] : undefined
  return isRecord(found) ? found : {}
}

describe("the service's Node flags and environment", () => {
  it("npm start passes exactly NODE_ENV_VARS and NODE_FLAGS", () => {
    const env = Object.entries(NODE_ENV_VARS).map(([key, value]) => `${key}=${value}`)
    assert.strictEqual(scripts()["start"], [...env, "node", ...NODE_FLAGS, "src/main.ts"].join(" "))
  })

  it("the image's CMD passes exactly NODE_FLAGS; its environment has the compile cache, filled as the user that runs it", () => {
    const lines = read("Dockerfile").split("\n")
    assert.deepStrictEqual(lines.filter((line) => line.startsWith("CMD ")), [
      `CMD ${JSON.stringify(["node", ...NODE_FLAGS, "src/main.ts"]).replaceAll(",", ", ")}`
    ])
    assert.deepStrictEqual(NODE_ENV_VARS, { NODE_COMPILE_CACHE: COMPILE_CACHE_DIR })
    assert.isTrue(lines.some((line) => line.trim() === `NODE_COMPILE_CACHE=${COMPILE_CACHE_DIR}`))
    const user = lines.findIndex((line) => line.startsWith("USER 1000:1000"))
    const warm = lines.findIndex((line) => line === "RUN node scripts/warm-compile-cache.ts")
    assert.isTrue(user >= 0 && warm > user, "the cache is filled after USER (Node keys it by user)")
  })
})
