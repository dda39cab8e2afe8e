import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // 2-core machines: spawned processes, real Postgres/Redis and a browser share them.
    maxWorkers: 2,
    reporters: ["default"]
  }
})
