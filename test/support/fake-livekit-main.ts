// A fake LiveKit server for development: `npm run livekit:fake -- [--port 7880] [--host 127.0.0.1] [--api-key devkey]
// [--api-secret secret] [--webhook-url <url>]... [--rooms 0] [--participants 0] [--latency-ms 0]`, then point the
// service's LiveKit URL at http://127.0.0.1:7880 with the same key and secret. `--rooms`/`--participants` seed
// `room-<i>` with `user-<i>-<j>` (one audio track each). Prints a line of counters every 10 s; stops on SIGINT/SIGTERM.
import { parseArgs } from "node:util"
import { runUntilSignal, wholeOption } from "./cli.ts"
import { FakeLiveKit } from "./fake-livekit.ts"

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "7880" },
    host: { type: "string", default: "127.0.0.1" },
    "api-key": { type: "string", default: "devkey" },
    "api-secret": { type: "string", default: "secret" },
    "webhook-url": { type: "string", multiple: true, default: [] },
    rooms: { type: "string", default: "0" },
    participants: { type: "string", default: "0" },
    "latency-ms": { type: "string", default: "0" }
  }
})

const fake = new FakeLiveKit({ apiKey: values["api-key"], apiSecret: values["api-secret"], webhookUrls: values["webhook-url"] })
fake.latencyMs = wholeOption("latency-ms", values["latency-ms"], 60_000)
fake.seed(wholeOption("rooms", values.rooms, 100_000), wholeOption("participants", values.participants, 10_000))
await fake.start(wholeOption("port", values.port, 65535), values.host)
const webhooks = fake.webhookUrls.length === 0 ? "no webhooks" : `webhooks to ${fake.webhookUrls.join(", ")}`
process.stdout.write(
  `fake LiveKit (${fake.url}): api key ${fake.apiKey}, ${fake.rooms().length} rooms, latency ${fake.latencyMs} ms, ${webhooks}\n`
)
const counters = () => {
  const calls = [...fake.calls].map(([method, n]) => `${method}=${n}`).join(" ")
  const participants = fake.rooms().reduce((sum, room) => sum + room.numParticipants, 0)
  return `rooms=${fake.rooms().length} participants=${participants} webhooks=${fake.webhooksSent} calls: ${calls === "" ? "none" : calls}\n`
}
runUntilSignal(counters, () => fake.stop())
