// A fake ASR gateway for development: `node test/support/fake-asr-main.ts [--port 50053] [--host 127.0.0.1]`,
// then set ASR_GATEWAY_URL=127.0.0.1:50053. Takes every audio stream (proto/asr.proto), answers each
// chunk as the fake does, and prints the chunks received per session every 5 s; stops on SIGINT/SIGTERM.
import { parseArgs } from "node:util"
import { wholeOption } from "./cli.ts"
import { FakeAsrGateway } from "./fake-asr.ts"

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "50053" },
    host: { type: "string", default: "127.0.0.1" }
  }
})

const fake = new FakeAsrGateway()
await fake.start(wholeOption("port", values.port, 65535, 0), values.host)
process.stdout.write(`fake ASR gateway on ${values.host}:${fake.port}\n`)

const report = setInterval(() => {
  const sessions = [...fake.received].map(([session, chunks]) => `${session}: ${chunks.length}`)
  if (sessions.length > 0) process.stdout.write(`chunks received: ${sessions.join(", ")}\n`)
}, 5000)
const stop = () => {
  clearInterval(report)
  fake.stop()
  process.exit(0)
}
process.stdout.on("error", stop)
process.once("SIGINT", stop)
process.once("SIGTERM", stop)
