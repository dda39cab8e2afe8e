// The reference AI Core for development: `npm run ai-core:reference -- [--port 50052] [--host 127.0.0.1]
// [--latency-ms 0] [--error-every 0] [--level 6]`, then start the service with
// AI_CORE_GRPC_URL=127.0.0.1:50052. Prints a line of counters every 10 s; stops on SIGINT/SIGTERM.
import { parseArgs } from "node:util"
import { wholeOption } from "./cli.ts"
import { ReferenceAiCore } from "./reference-ai-core.ts"

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "50052" },
    host: { type: "string", default: "127.0.0.1" },
    "latency-ms": { type: "string", default: "0" },
    "error-every": { type: "string", default: "0" },
    level: { type: "string", default: "6" }
  }
})

const core = new ReferenceAiCore({ level: wholeOption("level", values.level, 9), record: false })
core.latencyMs = wholeOption("latency-ms", values["latency-ms"], 60_000)
core.errorEvery = wholeOption("error-every", values["error-every"], 1_000_000)
await core.start(wholeOption("port", values.port, 65535), values.host)
process.stdout.write(
  `reference AI Core (${values.host}:${core.port}): raw deflate level ${core.level}, latency ${core.latencyMs} ms, ` +
    `error every ${core.errorEvery === 0 ? "never" : `${core.errorEvery} frames`}\n`
)
const report = setInterval(() => process.stdout.write(`frames=${core.frames} answered=${core.answered} streams=${core.streams}\n`), 10_000)
const stop = () => {
  clearInterval(report)
  core.stop()
  process.exit(0)
}
// A parent that reads our stdout and went away: stop quietly.
process.stdout.on("error", stop)
process.once("SIGINT", stop)
process.once("SIGTERM", stop)
