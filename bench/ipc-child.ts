import { type ChildProcess, fork } from "node:child_process"

/**
 * A bench helper process (`fork`ed, Node IPC) asked questions by id: `ask` sends a request with a
 * fresh id and resolves with the reply carrying it. Its first message is its "ready" reply. If the
 * process exits, what it was asked is answered with `onExit(id, code)` rather than never.
 */
export class IpcChild<Reply extends { readonly id: number }> {
  private nextId = 1
  private readonly waiting = new Map<number, (reply: Reply) => void>()
  private readonly child: ChildProcess
  private readonly onExit: (id: number, code: number | null) => Reply
  /** Set once the process has exited (its code). */
  private exited: { readonly code: number | null } | undefined

  /** The child's process id (0 if it has none). */
  get pid(): number {
    return this.child.pid ?? 0
  }

  private constructor(child: ChildProcess, decode: (raw: unknown) => Reply, onExit: (id: number, code: number | null) => Reply) {
    this.child = child
    this.onExit = onExit
    child.on("message", (raw: unknown) => {
      const reply = decode(raw)
      this.waiting.get(reply.id)?.(reply)
      this.waiting.delete(reply.id)
    })
    child.once("exit", (code) => {
      this.exited = { code }
      for (const [id, answer] of this.waiting) answer(onExit(id, code))
      this.waiting.clear()
    })
  }

  /** Forks `module` and waits for its first message (decoded); `name` is for the error when it exits first. */
  static async fork<Reply extends { readonly id: number }>(options: {
    readonly module: URL
    readonly name: string
    readonly stdout: "ignore" | "inherit"
    readonly decode: (raw: unknown) => Reply
    readonly onExit: (id: number, code: number | null) => Reply
  }): Promise<{ readonly child: IpcChild<Reply>; readonly ready: Reply }> {
    const child = fork(options.module, { stdio: ["ignore", options.stdout, "inherit", "ipc"] })
    const ready = await new Promise<Reply>((resolve, reject) => {
      child.once("message", (raw: unknown) => resolve(options.decode(raw)))
      child.once("exit", (code) => reject(new Error(`${options.name} exited (${code})`)))
    })
    return { child: new IpcChild(child, options.decode, options.onExit), ready }
  }

  ask(request: Record<string, unknown>): Promise<Reply> {
    const id = this.nextId++
    const exited = this.exited
    if (exited !== undefined || !this.child.connected) return Promise.resolve(this.onExit(id, exited?.code ?? null))
    return new Promise((resolve) => {
      this.waiting.set(id, resolve)
      // A send that fails (the process is exiting) is answered as its exit, not thrown as an 'error' event.
      this.child.send({ ...request, id }, (error) => {
        if (error === null || !this.waiting.delete(id)) return
        resolve(this.onExit(id, this.exited?.code ?? null))
      })
    })
  }

  stop(): void {
    if (this.child.connected) this.child.disconnect()
  }
}
