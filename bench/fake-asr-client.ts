import { Schema } from "effect"
import { IpcChild } from "./ipc-child.ts"

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
  private readonly child: IpcChild<Reply>
  readonly url: string

  private constructor(child: IpcChild<Reply>, url: string) {
    this.child = child
    this.url = url
  }

  static async start(): Promise<RemoteFakeAsr> {
    const { child, ready } = await IpcChild.fork({
      module: new URL("./fake-asr-process.ts", import.meta.url),
      name: "fake ASR process",
      stdout: "ignore",
      decode: decodeReply,
      onExit: (id): Reply => ({ id })
    })
    return new RemoteFakeAsr(child, ready.url ?? "")
  }

  /** Its process id (for its CPU). */
  get pid(): number {
    return this.child.pid
  }

  private ask(request: Record<string, unknown>): Promise<Reply> {
    return this.child.ask(request)
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
    this.child.stop()
  }
}
