import { Schema } from "effect"
import { type ChildProcess, fork } from "node:child_process"

const Reply = Schema.Struct({
  id: Schema.Number,
  url: Schema.optionalKey(Schema.String),
  received: Schema.optionalKey(Schema.Number),
  latencies: Schema.optionalKey(Schema.Array(Schema.Number)),
  firstAtMs: Schema.optionalKey(Schema.Number)
})
type Reply = typeof Reply.Type
const decodeReply = Schema.decodeUnknownSync(Reply)

/** The fake ASR gateway of bench/fake-asr-process.ts, from the bench's side. */
export class RemoteFakeAsr {
  private nextId = 1
  private readonly waiting = new Map<number, (reply: Reply) => void>()
  private readonly child: ChildProcess
  readonly url: string

  private constructor(child: ChildProcess, url: string) {
    this.child = child
    this.url = url
    child.on("message", (raw: unknown) => {
      const reply = decodeReply(raw)
      this.waiting.get(reply.id)?.(reply)
      this.waiting.delete(reply.id)
    })
  }

  static async start(): Promise<RemoteFakeAsr> {
    const child = fork(new URL("./fake-asr-process.ts", import.meta.url), { stdio: ["ignore", "ignore", "inherit", "ipc"] })
    const url = await new Promise<string>((resolve, reject) => {
      child.once("message", (raw: unknown) => resolve(decodeReply(raw).url ?? ""))
      child.once("exit", (code) => reject(new Error(`fake ASR process exited (${code})`)))
    })
    return new RemoteFakeAsr(child, url)
  }

  private ask(request: Record<string, unknown>): Promise<Reply> {
    const id = this.nextId++
    return new Promise((resolve) => {
      this.waiting.set(id, resolve)
      this.child.send({ ...request, id })
    })
  }

  /** Distinct sequences received in [from, to) per session, summed (older chunks are forgotten). */
  async count(ranges: ReadonlyArray<{ readonly sessionId: string; readonly from: number; readonly to: number }>): Promise<number> {
    return (await this.ask({ type: "count", ranges })).received ?? 0
  }

  /** Capture -> receipt (ms) of each of a session's sequences, first arrival. */
  async latencies(sessionId: string): Promise<ReadonlyArray<number>> {
    return (await this.ask({ type: "latencies", sessionId })).latencies ?? []
  }

  /** When the session's first chunk reached the fake (ms since the epoch), or undefined while none has. */
  async firstChunkAt(sessionId: string): Promise<number | undefined> {
    return (await this.ask({ type: "first", sessionId })).firstAtMs
  }

  stop(): void {
    this.child.disconnect()
  }
}
