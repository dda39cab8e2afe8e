import { Effect } from "effect"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { HttpServer } from "effect/http"
import type { RawConfig } from "../../src/config/source.ts"
import { AppConfig } from "../../src/layers/Config.ts"
import { jsonLogger } from "../../src/layers/Logger.ts"
import { Logger as EffectLogger } from "effect"

/** The base URL of a layer-built HTTP server (PORT=0 picks a free port). */
export const baseUrl = Effect.gen(function*() {
  const server = yield* HttpServer.HttpServer
  const address = server.address
  if (address._tag === "UnixPathAddress") return yield* Effect.die("expected a TCP listener")
  return `http://127.0.0.1:${address.port}`
})

/** Test configuration: free ports, a temporary data directory, quiet defaults, overridable per test (undefined: the default). */
export const testConfig = (env: RawConfig = {}) =>
  AppConfig.layerFrom({
    PORT: "0",
    GRPC_PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: "info",
    MEDIASOUP_LISTEN_IP: "127.0.0.1",
    // Each worker's WebRtcServer on a free port of the test's own RTC range (files run in parallel).
    RTC_PORT: "0",
    DATA_DIR: mkdtempSync(join(tmpdir(), "auralink-test-")),
    ...env
  })

/** A logger that keeps parsed JSON log lines in memory, for assertions on log content. */
export const capturedLogs = () => {
  const lines: Array<Record<string, unknown>> = []
  const layer = EffectLogger.layer([
    jsonLogger({ service: "test", env: "test", version: "0" }, (line) => {
      const parsed: unknown = JSON.parse(line)
      if (typeof parsed === "object" && parsed !== null) lines.push(Object.fromEntries(Object.entries(parsed)))
    })
  ])
  return { lines, layer }
}

/** Reads a server-sent events response in the background; `text()` is what arrived so far. */
export const readEvents = (response: Response) => {
  let text = ""
  const reader = response.body?.getReader()
  const decoder = new TextDecoder()
  const pump = async (): Promise<void> => {
    const next = await reader?.read()
    if (next === undefined || next.done) return
    text += decoder.decode(next.value, { stream: true })
    return pump()
  }
  void pump().catch(() => {})
  return { text: () => text, cancel: () => void reader?.cancel().catch(() => {}) }
}
