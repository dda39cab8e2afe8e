import { type ChildProcess, spawn } from "node:child_process"
import { Redis as IORedis } from "ioredis"
import { freePort } from "./process.ts"

/** A private redis-server on its own port, for fault tests: killed and started again on the same port. */
export interface PrivateRedis {
  readonly url: string
  readonly port: number
  /** SIGKILL: every connection drops at once. */
  readonly kill: () => Promise<void>
  /** A fresh (empty) server on the same port; resolves once it answers PING. */
  readonly start: () => Promise<void>
  /** SIGSTOP / SIGCONT: connections stay open and nothing answers (a hung server). */
  readonly pause: () => void
  readonly resume: () => void
  readonly stop: () => Promise<void>
}

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => child.exitCode !== null || child.signalCode !== null ? resolve() : child.once("exit", () => resolve()))

export const privateRedis = async (): Promise<PrivateRedis> => {
  const port = await freePort()
  let server: ChildProcess | undefined
  const start = async () => {
    server = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" })
    const client = new IORedis({ port, host: "127.0.0.1", retryStrategy: () => 50, lazyConnect: true })
    client.on("error", () => {})
    try {
      await client.connect().catch(() => undefined)
      await client.ping()
    } finally {
      client.disconnect()
    }
  }
  const kill = async () => {
    const current = server
    server = undefined
    if (current === undefined) return
    current.kill("SIGCONT")
    current.kill("SIGKILL")
    await exited(current)
  }
  await start()
  const pause = () => void server?.kill("SIGSTOP")
  const resume = () => void server?.kill("SIGCONT")
  return { url: `redis://127.0.0.1:${port}`, port, kill, start, pause, resume, stop: kill }
}
