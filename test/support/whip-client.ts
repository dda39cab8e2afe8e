import { type ChildProcess, execFile, spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { existsSync } from "node:fs"
import { mkdir, readFile, rename } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"

import type { WhipNetns } from "./whip-netns.ts"

export { createWhipNetns, removeStaleWhipNetns, type WhipNetns, withWhipNetns } from "./whip-netns.ts"

/**
 * Debian's `simple-whip-client` (/usr/bin/whip-client, GStreamer webrtcbin), run unmodified inside a
 * private network namespace (whip-netns.ts: libnice offers no loopback candidates). As packaged on
 * bookworm it aborts at start-up (libsoup2 in whip-client, libsoup3 through libnice -> gupnp-igd);
 * the stub library built here takes gupnp-igd's place on LD_LIBRARY_PATH so libsoup3 never loads.
 */

export const WHIP_CLIENT_BIN = "whip-client"

/** A 440 Hz Opus tone, payload type 100 (the form the whip-client README uses). */
export const AUDIO_TONE_PIPELINE = "audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! queue ! opusenc ! " +
  "rtpopuspay pt=100 ssrc=1 ! queue ! application/x-rtp,media=audio,encoding-name=OPUS,payload=100"

/** A bouncing ball in VP8, payload type 96. */
export const VIDEO_BALL_PIPELINE = "videotestsrc is-live=true pattern=ball ! videoconvert ! queue ! vp8enc deadline=1 ! " +
  "rtpvp8pay pt=96 ssrc=2 ! queue ! application/x-rtp,media=video,encoding-name=VP8,payload=96"

/**
 * The service's environment for a whip-client in `netns`: HTTP and mediasoup listen on the host end of
 * the veth, and mediasoup announces it as its ICE candidate. The service's URL is then http://<hostIp>:<PORT>.
 */
export const whipServiceEnv = (netns: Pick<WhipNetns, "hostIp">): Record<string, string> => ({
  HOST: netns.hostIp,
  MEDIASOUP_LISTEN_IP: netns.hostIp,
  MEDIASOUP_ANNOUNCED_IP: netns.hostIp
})

const STUB_SONAME = "libgupnp-igd-1.0.so.4"
const STUB_SOURCE = fileURLToPath(new URL("./whip-client/gupnp-igd-stub.c", import.meta.url))
const STUB_FLAGS = ["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", `-Wl,-soname,${STUB_SONAME}`]

/** Builds the gupnp-igd stub once per source (cached under the temp dir); returns the directory for LD_LIBRARY_PATH. */
export const buildStub = async (): Promise<string> => {
  const source = await readFile(STUB_SOURCE)
  const hash = createHash("sha256").update(source).update(STUB_FLAGS.join(" ")).digest("hex").slice(0, 16)
  const dir = join(tmpdir(), `whip-client-gupnp-igd-stub-${hash}`)
  const library = join(dir, STUB_SONAME)
  if (existsSync(library)) return dir
  await mkdir(dir, { recursive: true })
  // Built aside and renamed: a concurrent build never leaves a half-written library in place.
  const partial = join(dir, `.${STUB_SONAME}.${process.pid}`)
  await promisify(execFile)("gcc", [...STUB_FLAGS, "-o", partial, STUB_SOURCE])
  await rename(partial, library)
  return dir
}

export interface WhipClientOptions {
  readonly url: string
  readonly nsName: string
  readonly token?: string
  /** Default: AUDIO_TONE_PIPELINE when no video pipeline is given either. */
  readonly audioPipeline?: string
  readonly videoPipeline?: string
  /** `-n`: candidates in the offer, no PATCH. */
  readonly noTrickle?: boolean
  /** whip-client's `-l` (4 info, 5 verbose: SDPs and candidates printed). */
  readonly logLevel?: number
  readonly extraArgs?: ReadonlyArray<string>
  /** From buildStub(); built here when absent. */
  readonly stubDir?: string
}

export interface WhipClientExit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface WhipClientProcess {
  readonly child: ChildProcess
  readonly args: ReadonlyArray<string>
  /** stdout and stderr so far, interleaved. */
  readonly output: () => string
  readonly exited: Promise<WhipClientExit>
  /** Resolves with the output once it matches, rejects after the timeout or when the client exits first. */
  readonly waitForOutput: (pattern: RegExp, timeoutMs?: number) => Promise<string>
  /** SIGINT (whip-client DELETEs its resource, if it has one, and exits 0); SIGKILL if still alive after `timeoutMs`. */
  readonly stop: (timeoutMs?: number) => Promise<WhipClientExit>
}

/** whip-client's command-line arguments for these options. */
export const whipClientArgs = (options: Omit<WhipClientOptions, "nsName" | "stubDir">): Array<string> => {
  const audio = options.audioPipeline ?? (options.videoPipeline === undefined ? AUDIO_TONE_PIPELINE : undefined)
  return [
    "-o",
    "-u",
    options.url,
    ...(options.token === undefined ? [] : ["-t", options.token]),
    ...(audio === undefined ? [] : ["-A", audio]),
    ...(options.videoPipeline === undefined ? [] : ["-V", options.videoPipeline]),
    ...(options.noTrickle === true ? ["-n"] : []),
    ...(options.logLevel === undefined ? [] : ["-l", String(options.logLevel)]),
    ...(options.extraArgs ?? [])
  ]
}

/** Starts whip-client inside `nsName` (`ip netns exec` execs it: the child is whip-client itself). */
export const runWhipClient = async (options: WhipClientOptions): Promise<WhipClientProcess> => {
  const stubDir = options.stubDir ?? (await buildStub())
  const args = whipClientArgs(options)
  const libraryPath = [stubDir, process.env["LD_LIBRARY_PATH"]].filter((p) => p !== undefined && p !== "").join(":")
  const child = spawn("ip", ["netns", "exec", options.nsName, WHIP_CLIENT_BIN, ...args], {
    env: { ...process.env, LD_LIBRARY_PATH: libraryPath },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  const listeners = new Set<() => void>()
  const append = (chunk: Buffer): void => {
    output += chunk.toString("utf8")
    listeners.forEach((listener) => listener())
  }
  child.stdout?.on("data", append)
  child.stderr?.on("data", append)
  const exited = new Promise<WhipClientExit>((resolve) => {
    child.once("error", (error) => {
      output += `\n[spawn error] ${error.message}\n`
      resolve({ code: null, signal: null })
    })
    child.once("close", (code, signal) => resolve({ code, signal }))
  })

  const waitForOutput = (pattern: RegExp, timeoutMs = 10_000): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (!pattern.test(output)) return
        done()
        resolve(output)
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`whip-client output did not match ${pattern} within ${timeoutMs} ms:\n${output}`))
      }, timeoutMs)
      const done = (): void => {
        clearTimeout(timer)
        listeners.delete(check)
      }
      listeners.add(check)
      void exited.then(() => {
        if (!listeners.has(check)) return
        done()
        if (pattern.test(output)) resolve(output)
        else reject(new Error(`whip-client exited before its output matched ${pattern}:\n${output}`))
      })
      check()
    })

  const stop = async (timeoutMs = 5_000): Promise<WhipClientExit> => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT")
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    const exit = await exited
    clearTimeout(timer)
    return exit
  }

  return { child, args, output: () => output, exited, waitForOutput, stop }
}
