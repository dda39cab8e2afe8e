import { execFile, execFileSync } from "node:child_process"
import { promisify } from "node:util"

const run = promisify(execFile)

/** A private network namespace joined to the root one by a veth pair: traffic stays on this machine. */
export interface WhipNetns {
  readonly nsName: string
  /** The root-namespace end: where services the client talks to listen (and what mediasoup announces). */
  readonly hostIp: string
  /** The namespace end: the client's only non-loopback address, so its only ICE host candidate. */
  readonly clientIp: string
  /** Prefix that runs a command inside the namespace. */
  readonly exec: ReadonlyArray<string>
  readonly close: () => Promise<void>
  readonly [Symbol.asyncDispose]: () => Promise<void>
}

// Names carry the creating pid (stale ones of dead pids are deleted); interface names stay within 15 chars.
const NS_PATTERN = /^whipns-(\d+)-\d+$/
const LINK_PATTERN = /^wh(\d+)-\d+[hc]$/
const SLOTS = 16384 // /30 subnets in 10.213.0.0/16

const open = new Set<string>()
let created = 0
let exitHookInstalled = false

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return error instanceof Error && "code" in error && error.code === "EPERM"
  }
}

const ip = async (...args: ReadonlyArray<string>): Promise<string> => (await run("ip", args)).stdout

const ignoreFailure = (promise: Promise<unknown>): Promise<void> => promise.then(() => undefined, () => undefined)

/** Deletes namespaces and veth ends this helper left behind in processes that are gone. */
export const removeStaleWhipNetns = async (): Promise<void> => {
  const namespaces = (await ip("netns", "list")).split("\n").map((line) => line.split(" ")[0] ?? "")
  for (const name of namespaces) {
    const pid = NS_PATTERN.exec(name)?.[1]
    if (pid !== undefined && !isAlive(Number(pid))) await ignoreFailure(ip("netns", "del", name))
  }
  const links = (await ip("-o", "link", "show")).split("\n").map((line) => /^\d+: ([^:@]+)/.exec(line)?.[1] ?? "")
  for (const link of links) {
    const pid = LINK_PATTERN.exec(link)?.[1]
    if (pid !== undefined && !isAlive(Number(pid))) await ignoreFailure(ip("link", "del", link))
  }
}

const slotAddresses = (slot: number): { hostIp: string; clientIp: string } => {
  const third = slot >> 6
  const fourth = (slot & 63) * 4
  return { hostIp: `10.213.${third}.${fourth + 1}`, clientIp: `10.213.${third}.${fourth + 2}` }
}

/** A /30 in 10.213.0.0/16 no interface of the root namespace has yet (starting from one derived from pid and count). */
const freeSlot = async (seed: number): Promise<{ hostIp: string; clientIp: string }> => {
  const used = await ip("-o", "-4", "addr", "show")
  for (let i = 0; i < SLOTS; i++) {
    const addresses = slotAddresses((seed + i) % SLOTS)
    if (!used.includes(` ${addresses.hostIp}/`)) return addresses
  }
  throw new Error("no free /30 left in 10.213.0.0/16")
}

const deleteSync = (nsName: string): void => {
  try {
    execFileSync("ip", ["netns", "del", nsName], { stdio: "ignore" })
  } catch {
    // Already gone.
  }
}

const installExitHook = (): void => {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on("exit", () => open.forEach(deleteSync))
}

/** Creates a namespace with one veth pair (IPv6 off inside, so the client offers one IPv4 host candidate). */
export const createWhipNetns = async (): Promise<WhipNetns> => {
  await removeStaleWhipNetns()
  installExitHook()
  const n = created++
  const nsName = `whipns-${process.pid}-${n}`
  const hostLink = `wh${process.pid}-${n}h`
  const clientLink = `wh${process.pid}-${n}c`
  const { hostIp, clientIp } = await freeSlot(process.pid * 31 + n)
  open.add(nsName)
  const close = async (): Promise<void> => {
    if (!open.delete(nsName)) return
    await ignoreFailure(ip("netns", "del", nsName))
    // Deleting the namespace deletes the peer inside it and with it the host end; this covers a half-made pair.
    await ignoreFailure(ip("link", "del", hostLink))
  }
  try {
    await ip("netns", "add", nsName)
    const disableIpv6 = "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6"
    await run("ip", ["netns", "exec", nsName, "sh", "-c", disableIpv6])
    await ip("link", "add", hostLink, "type", "veth", "peer", "name", clientLink, "netns", nsName)
    await ip("addr", "add", `${hostIp}/30`, "dev", hostLink)
    await ip("link", "set", hostLink, "up")
    await ip("-n", nsName, "addr", "add", `${clientIp}/30`, "dev", clientLink)
    await ip("-n", nsName, "link", "set", clientLink, "up")
    await ip("-n", nsName, "link", "set", "lo", "up")
  } catch (error) {
    await close()
    throw new Error(`creating network namespace ${nsName} failed (needs root and iproute2): ${String(error)}`, { cause: error })
  }
  return { nsName, hostIp, clientIp, exec: ["ip", "netns", "exec", nsName], close, [Symbol.asyncDispose]: close }
}

/** Runs `body` with a fresh namespace, deleted afterwards whatever happens. */
export const withWhipNetns = async <A>(body: (netns: WhipNetns) => Promise<A>): Promise<A> => {
  const netns = await createWhipNetns()
  try {
    return await body(netns)
  } finally {
    await netns.close()
  }
}
