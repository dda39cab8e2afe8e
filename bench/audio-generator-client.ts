import { Schema } from "effect"
import type { AudioPathName } from "./audio-streams.ts"
import { GeneratorReply } from "./audio-generator-protocol.ts"
import type { Load, LoadWindow } from "./ingest-rig.ts"
import { IpcChild } from "./ipc-child.ts"

const decodeReply = Schema.decodeUnknownSync(GeneratorReply)

/** The load generator of bench/audio-generator.ts, from the bench's side; it is the `Load` of a measured window. */
export class RemoteGenerator implements Load {
  private readonly child: IpcChild<GeneratorReply>
  /** Opus RTP packets it captured from ffmpeg. */
  readonly captured: number

  private constructor(child: IpcChild<GeneratorReply>, captured: number) {
    this.child = child
    this.captured = captured
  }

  /** Forks the generator and waits until it has captured its Opus packets. */
  static async start(): Promise<RemoteGenerator> {
    const { child, ready } = await IpcChild.fork({
      module: new URL("./audio-generator.ts", import.meta.url),
      name: "load generator",
      stdout: "inherit",
      decode: decodeReply,
      // A generator that died answers what it was asked with an error (rather than never).
      onExit: (id, code): GeneratorReply => ({ id, error: `exited (${code})` })
    })
    if (ready.error !== undefined) {
      child.stop()
      throw new Error(`load generator: ${ready.error}`)
    }
    return new RemoteGenerator(child, ready.captured ?? 0)
  }

  private async ask(request: Record<string, unknown>): Promise<GeneratorReply> {
    const reply = await this.child.ask(request)
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
    this.child.stop()
  }
}
