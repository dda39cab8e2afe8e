import { assert, describe, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { NODE_FLAGS } from "../../src/config/node-flags.ts"
import { isRecord } from "../support/kubernetes.ts"

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8")

describe("the service's Node flags", () => {
  it("npm start passes exactly NODE_FLAGS", () => {
    const manifest: unknown = JSON.parse(read("package.json"))
    const scripts = isRecord(manifest) ? manifest["scripts"] : undefined
    assert.strictEqual(isRecord(scripts) ? scripts["start"] : undefined, ["node", ...NODE_FLAGS, "src/main.ts"].join(" "))
  })

  it("the image's CMD passes exactly NODE_FLAGS", () => {
    const cmd = read("Dockerfile").split("\n").filter((line) => line.startsWith("CMD "))
    assert.deepStrictEqual(cmd, [`CMD ${JSON.stringify(["node", ...NODE_FLAGS, "src/main.ts"]).replaceAll(",", ", ")}`])
  })
})
