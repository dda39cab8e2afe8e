// A fake Dashboard for development: `npm run dashboard:fake -- [--port 8090] [--host 127.0.0.1] [--api-key devkey]
// [--latency-ms 0] [--heartbeat-interval-ms <ms>]`, then set DASHBOARD_URL=http://127.0.0.1:8090 and
// DASHBOARD_API_KEY=devkey. Logs each call; prints the registered bridges every 10 s; stops on SIGINT/SIGTERM.
import { parseArgs } from "node:util"
import { wholeOption } from "./cli.ts"
import { FakeDashboard } from "./fake-dashboard.ts"

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "8090" },
    host: { type: "string", default: "127.0.0.1" },
    "api-key": { type: "string", default: "devkey" },
    "latency-ms": { type: "string", default: "0" },
    "heartbeat-interval-ms": { type: "string" }
  }
})

const interval = values["heartbeat-interval-ms"]
const fake = new FakeDashboard({
  apiKey: values["api-key"],
  ...(interval === undefined ? {} : { heartbeatIntervalMs: wholeOption("heartbeat-interval-ms", interval, 3_600_000, 1) })
})
fake.latencyMs = wholeOption("latency-ms", values["latency-ms"], 60_000, 0)
await fake.start(wholeOption("port", values.port, 65535, 0), values.host)
process.stdout.write(`fake Dashboard (${fake.url}): api key ${fake.apiKey}, latency ${fake.latencyMs} ms\n`)

let seen = { registrations: 0, heartbeats: 0, deregistrations: 0, rejected: 0 }
const report = setInterval(() => {
  const now = {
    registrations: fake.registrations.length,
    heartbeats: fake.heartbeats.length,
    deregistrations: fake.deregistrations.length,
    rejected: fake.rejected.length
  }
  for (const r of fake.registrations.slice(seen.registrations)) process.stdout.write(`register ${JSON.stringify(r.body)}\n`)
  for (const d of fake.deregistrations.slice(seen.deregistrations)) process.stdout.write(`deregister ${d.bridgeId}\n`)
  for (const r of fake.rejected.slice(seen.rejected)) process.stdout.write(`refused ${r.method} ${r.path}: ${r.status}\n`)
  const last = fake.heartbeats.at(-1)
  if (now.heartbeats > seen.heartbeats && last !== undefined) {
    process.stdout.write(`heartbeats +${now.heartbeats - seen.heartbeats}, last ${JSON.stringify(last.body)}\n`)
  }
  seen = now
}, 1000)
const summary = setInterval(() => process.stdout.write(`bridges: ${[...fake.bridges.keys()].join(", ") || "none"}\n`), 10_000)
const stop = () => {
  clearInterval(report)
  clearInterval(summary)
  void fake.stop().finally(() => process.exit(0))
}
process.stdout.on("error", stop)
process.once("SIGINT", stop)
process.once("SIGTERM", stop)
