import { Schema } from "effect"
import { type ChildProcess, fork } from "node:child_process"
import type { AudioPathName } from "./audio-streams.ts"
import { GeneratorReply } from "./audio-generator-protocol.ts"
import type { Load, LoadWindow } from "./ingest-rig.ts"

const decodeReply = Schema.decodeUnknownSync(GeneratorReply)

/** The load generator of bench/audio-generator.ts, from the bench's side; it is the `Load` of a measured window. */
export class RemoteGenerator implements Load {
  private nextId = 1
  private readonly waiting = new Map<number, (reply: GeneratorReply) => void>()
  private readonly child: ChildProcess
  /** Opus RTP packets it captured from ffmpeg. */
  readonly captured: number

  private constructor(child: ChildProcess, captured: number) {
    this.child = child
    this.captured = captured
    child.on("message", (raw: unknown) => {
      const reply = decodeReply(raw)
      this.waiting.get(reply.id)?.(reply)
      this.waiting.delete(reply.id)
    })
    // A generator that died answers what it was asked with an error (rather than never).
    child.once("exit", (code) => {
      for (const [id, answer] of this.waiting) answer({ id, error: `exited (${code})` })
      this.waiting.clear()
    })
  }

  /** Forks the generator and waits until it has captured its Opus packets. */
  static async start(): Promise<RemoteGenerator> {
    const child = fork(new URL("./audio-generator.ts", import.meta.url), { stdio: ["ignore", "inherit", "inherit", "ipc"] })
    const ready = await new Promise<GeneratorReply>((resolve, reject) => {
      child.once("message", (raw: unknown) => resolve(decodeReply(raw)))
      child.once("exit", (code) => reject(new Error(`load generator exited (${code})`)))
    })
    if (ready.error !== undefined) {
      child.disconnect()
      throw new Error(`load generator: ${ready.error}`)
    }
    return new RemoteGenerator(child, ready.captured ?? 0)
  }

  private async ask(request: Record<string, unknown>): Promise<GeneratorReply> {
    const id = this.nextId++
    const reply = await new Promise<GeneratorReply>((resolve) => {
      this.waiting.set(id, resolve)
      this.child.send({ ...request, id })
    })
    if (reply.error !== undefined) throw new Error(`load generator: ${reply.error}`)
    return reply
  }

  /** Opens sessions on `paths` against `base`; they stream from then on. */
  async open(base: string, auth: Record<string, string>, paths: ReadonlyArray<AudioPathName>): Promise<void> {
    await this.ask({ type: "open", base, auth, paths })
  }

  readonly start = async (): Promise<void> => {
    await this.ask({ type: "start" })
  }

  readonly end = async (): Promise<LoadWindow> => {
    const { window } = await this.ask({ type: "end" })
    if (window === undefined) throw new Error("load generator: no window in its reply")
    return window
  }

  /** Ends every session's stream. */
  async close(): Promise<void> {
    await this.ask({ type: "close" })
  }

  stop(): void {
    if (this.child.connected) this.child.disconnect()
  }
}
