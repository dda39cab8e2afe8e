// The far side of bench/rtp-pipeline's UDP runs, in a worker thread (its own core): sends the
// packets it is given, round robin, to `target` for `seconds` (as fast as it can, or at `rate`
// packets/s), in bursts of BURST with a turn of the event loop between them (so its own receive
// side is served); counts what arrives on its sink socket. Messages: in `{ packets, target,
// seconds, rate? }`, out `{ sinkPort }`, then, on `"start"`, `{ sent, received }` (received
// counted until DRAIN_MS after the last send).
import { createSocket } from "node:dgram"
import { parentPort, workerData } from "node:worker_threads"

const BURST = 32
const DRAIN_MS = 300

interface PeerData {
  readonly packets: ReadonlyArray<Uint8Array>
  readonly target: number
  readonly seconds: number
  readonly rate?: number
}

const isPeerData = (value: unknown): value is PeerData =>
  typeof value === "object" && value !== null && "packets" in value && Array.isArray(value.packets) && "target" in value &&
  typeof value.target === "number" && "seconds" in value && typeof value.seconds === "number"

const port = parentPort
if (port === null || !isPeerData(workerData)) throw new Error("rtp-udp-peer: run as a worker with { packets, target, seconds }")
const { packets, target, seconds, rate } = workerData
const sender = createSocket({ type: "udp4", sendBufferSize: 8 * 1024 * 1024 })
const sink = createSocket({ type: "udp4", recvBufferSize: 8 * 1024 * 1024 })
let received = 0
sink.on("message", () => received++)
sink.bind(0, "127.0.0.1", () => port.postMessage({ sinkPort: sink.address().port }))

port.once("message", () => {
  let sent = 0
  let next = 0
  const started = performance.now()
  const until = started + seconds * 1000
  const burst = () => {
    const now = performance.now()
    if (now >= until) {
      setTimeout(() => {
        port.postMessage({ sent, received })
        sender.close()
        sink.close()
      }, DRAIN_MS)
      return
    }
    // With a rate: only what is due by now (a millisecond timer between bursts).
    const due = rate === undefined ? BURST : Math.min(BURST, Math.floor(((now - started) / 1000) * rate) - sent)
    for (let i = 0; i < due; i++) {
      sender.send(packets[next]!, target, "127.0.0.1")
      next = next + 1 === packets.length ? 0 : next + 1
      sent++
    }
    if (rate === undefined || due === BURST) setImmediate(burst)
    else setTimeout(burst, 1)
  }
  burst()
})
