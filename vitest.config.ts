import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The service serves the demo prebuilt (dist/demo/); build it once per run, as `npm start` does.
    globalSetup: ["test/support/demo-build.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // 2-core machines: spawned processes, real Postgres/Redis and a browser share them.
    maxWorkers: 2,
    reporters: ["default"]
  }
})
