import { buildDemo } from "../../scripts/build-demo.ts"

/** Vitest global setup: the browser demo is built into dist/demo/ before any test file runs (the e2e tests load /demo). */
export default async function setup(): Promise<void> {
  await buildDemo()
}
