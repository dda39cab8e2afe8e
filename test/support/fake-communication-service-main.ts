// A fake Communication Service for development: `npm run communication:fake -- [--port 8090] [--host 127.0.0.1]
// [--api-key devkey] [--seed 100] [--latency-ms 0]`, then set COMMUNICATION_SERVICE_URL=http://127.0.0.1:8090 and
// COMMUNICATION_SERVICE_API_KEY to the same key. `--seed n` adds `aura:user-<i>` for i < n. Prints call counters
// every 10 s; stops on SIGINT/SIGTERM.
import { parseArgs } from "node:util"
import { runUntilSignal, wholeOption } from "./cli.ts"
import { FakeCommunicationService } from "./fake-communication-service.ts"

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8090" },
    host: { type: "string", default: "127.0.0.1" },
    "api-key": { type: "string", default: "devkey" },
    seed: { type: "string", default: "100" },
    "latency-ms": { type: "string", default: "0" }
  }
})

const fake = new FakeCommunicationService({ apiKey: values["api-key"] })
fake.latencyMs = wholeOption("latency-ms", values["latency-ms"], 60_000)
fake.seed(wholeOption("seed", values.seed, 1_000_000))
await fake.start(wholeOption("port", values.port, 65535), values.host)
process.stdout.write(`fake Communication Service (${fake.url}): api key ${fake.apiKey}, latency ${fake.latencyMs} ms\n`)
const counters = () => {
  const calls = [...fake.calls].map(([operation, n]) => `${operation}=${n}`).join(" ")
  return `calls: ${calls === "" ? "none" : calls}\n`
}
runUntilSignal(counters, () => fake.stop())
