import { Schema } from "effect"
import type { AudioPathName } from "./audio-streams.ts"
import { GeneratorReply } from "./audio-generator-protocol.ts"
import type { Load, LoadWindow } from "./ingest-rig.ts"
import { IpcChild } from "./ipc-child.ts"

const decodeReply = Schema.decodeUnknownSync(GeneratorReply)

/** Sessions being opened at once, over all processes (as a few clients signaling at once would). */
const OPENING_AT_ONCE = 8

/**
 * Processes one generator spreads its sessions over (BENCH_AUDIO_GENERATORS, default 2): one
 * process's thread saturated at 200-250 sessions (ticks seconds late, sessions it opened timing
 * out), well before the machine did; two share its sessions and still report their CPU as one.
 */
const GENERATOR_PROCESSES = Math.max(1, Number(process.env["BENCH_AUDIO_GENERATORS"] ?? 2))

/** Forks one generator process and waits until it has captured its Opus packets. */
const forkProcess = async (): Promise<{ readonly child: IpcChild<GeneratorReply>; readonly captured: number }> => {
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
  return { child, captured: ready.captured ?? 0 }
}

/** The load generator of bench/audio-generator.ts (one or more processes), from the bench's side; it is the `Load` of a measured window. */
export class RemoteGenerator implements Load {
  private readonly children: ReadonlyArray<IpcChild<GeneratorReply>>
  /** Opus RTP packets each process captured from ffmpeg (the fewest). */
  readonly captured: number

  private constructor(children: ReadonlyArray<IpcChild<GeneratorReply>>, captured: number) {
    this.children = children
    this.captured = captured
  }

  /** Forks `processes` generator processes and waits until each has captured its Opus packets. */
  static async start(processes = GENERATOR_PROCESSES): Promise<RemoteGenerator> {
    const forked = await Promise.allSettled(Array.from({ length: processes }, forkProcess))
    const started = forked.flatMap((f) => (f.status === "fulfilled" ? [f.value] : []))
    const failed = forked.find((f) => f.status === "rejected")
    if (failed !== undefined) {
      for (const { child } of started) child.stop()
      throw failed.reason
    }
    return new RemoteGenerator(started.map((s) => s.child), Math.min(...started.map((s) => s.captured)))
  }

  /** Asks every process the same, at once. */
  private async askAll(request: Record<string, unknown>): Promise<Array<GeneratorReply>> {
    return Promise.all(this.children.map((child) => this.ask(child, request)))
  }

  private async ask(child: IpcChild<GeneratorReply>, request: Record<string, unknown>): Promise<GeneratorReply> {
    const reply = await child.ask(request)
    if (reply.error !== undefined) throw new Error(`load generator: ${reply.error}`)
    return reply
  }

  /** Opens sessions on `paths` against `base`, dealt out to the processes in turn; they stream from then on. */
  async open(base: string, auth: Record<string, string>, paths: ReadonlyArray<AudioPathName>): Promise<void> {
    const count = this.children.length
    const concurrency = Math.ceil(OPENING_AT_ONCE / count)
    await Promise.all(
      this.children.map((child, i) => this.ask(child, { type: "open", base, auth, concurrency, paths: paths.filter((_, j) => j % count === i) }))
    )
  }

  readonly start = async (): Promise<void> => {
    await this.askAll({ type: "start" })
  }

  /** The processes' windows as one: every range, their CPU summed, the latest sender. */
  readonly end = async (): Promise<LoadWindow> => {
    const windows = (await this.askAll({ type: "end" })).map(({ window }) => {
      if (window === undefined) throw new Error("load generator: no window in its reply")
      return window
    })
    return {
      ranges: windows.flatMap((w) => w.ranges),
      cpuPct: windows.reduce((sum, w) => sum + w.cpuPct, 0),
      sendLateP99: Math.max(...windows.map((w) => w.sendLateP99))
    }
  }

  /** Ends every session's stream. */
  async close(): Promise<void> {
    await this.askAll({ type: "close" })
  }

  stop(): void {
    for (const child of this.children) child.stop()
  }
}
