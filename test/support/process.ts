import { type ChildProcess, spawn } from "node:child_process"
import { freePort, waitForOk } from "../../bench/support.ts"
import { asServiceNode } from "../../src/config/node-flags.ts"

export { freePort, waitForOk }

export interface ServiceProcess {
  readonly child: ChildProcess
  readonly httpUrl: string
  readonly output: () => string
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Spawns the real service (`node <NODE_FLAGS> src/main.ts` with NODE_ENV_VARS, what `npm start` runs) with extra environment. */
export const startService = async (env: Record<string, string>): Promise<ServiceProcess> => {
  const port = env["PORT"] ?? String(await freePort())
  const node = asServiceNode(["src/main.ts"], { GRPC_PORT: "0", HOST: "127.0.0.1", RTC_PORT: "0", ...env, PORT: port })
  const child = spawn(process.execPath, node.args, { env: node.env, stdio: ["ignore", "pipe", "pipe"] })
  let output = ""
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal }))
  )
  return { child, httpUrl: `http://127.0.0.1:${port}`, output: () => output, exited }
}

/** Per-client session caps (and the instance's capacity) lifted, for load and fault tests whose clients open many sessions as one user. */
export const NO_SESSION_CAPS = {
  INSTANCE_CAPACITY: "1000000",
  MAX_PENDING_SESSIONS_PER_USER: "1000000",
  MAX_PENDING_SESSIONS_PER_DEVICE: "1000000",
  MAX_OPEN_SESSIONS_PER_USER: "1000000",
  MAX_OPEN_SESSIONS_PER_DEVICE: "1000000"
} as const
