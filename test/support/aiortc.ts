/**
 * WHIP publish / WHEP play with a real non-browser WebRTC stack: Debian's python3-aiortc 1.4 through the scripts
 * in ./aiortc/ (always /usr/bin/python3: aiortc is installed for Debian's Python only). Each script prints one JSON
 * object a line ({"event": ...}); these helpers spawn one, collect its events and resolve when it exits.
 */
import { spawn, spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"

export { crossCorrelation, type Correlation, decimate, readWav, toMono, type WavPcm } from "./cross-correlation.ts"

export const PYTHON = "/usr/bin/python3"
const script = (name: string) => fileURLToPath(new URL(`./aiortc/${name}`, import.meta.url))

/** One JSON line of a script: `event` is "published", "connected", "done" or "deleted". */
export type ScriptEvent = Readonly<Record<string, unknown>> & { readonly event: string }

export interface ScriptRun {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly events: ReadonlyArray<ScriptEvent>
  /** The failure (HTTP status and body, or the reason) when `code` is not 0. */
  readonly stderr: string
}

export interface CommonOptions {
  /** The WHIP or WHEP endpoint (http://host:port/whip, .../whep/sessions/<id>). */
  readonly url: string
  readonly token: string
  /** Also send / receive video. */
  readonly video?: boolean
  /** Addresses aiortc gathers host candidates on (default 127.0.0.1 only; aioice 0.8 never gathers loopback itself). */
  readonly hostCandidates?: ReadonlyArray<string>
  /** Seconds to wait for connectionState "connected" (the script's default: 20). */
  readonly connectTimeoutSeconds?: number
  /** Kill the script (SIGKILL) after this long; default 60 s. */
  readonly timeoutMs?: number
  /** Called with each event as it is printed (e.g. start a viewer once "published" arrives); `kill` signals the script. */
  readonly onEvent?: (event: ScriptEvent, kill: (signal: NodeJS.Signals) => void) => void
}

export interface PublishOptions extends CommonOptions {
  /** The WAV to stream once, in real time (any rate/channels ffmpeg reads; aiortc resamples to 48 kHz stereo Opus). */
  readonly wav: string
  /** Stop after this long even if the WAV is longer. */
  readonly seconds?: number
  /** DELETE the resource when done (a "deleted" event with its status). */
  readonly delete?: boolean
  /** Offer a fingerprint that does not match the DTLS certificate: the server refuses the handshake. */
  readonly wrongFingerprint?: boolean
}

export interface PlayOptions extends CommonOptions {
  /** Where the received audio is written: mono, 48 kHz, s16 (silence fills RTP timestamp gaps). */
  readonly out: string
  /** How long to record once connected. */
  readonly seconds: number
}

/** True when Debian's python3 can import aiortc (scripts/test-prereqs.sh installs python3-aiortc). */
export const hasAiortc = (): boolean => spawnSync(PYTHON, ["-c", "import aiortc"], { stdio: "ignore" }).status === 0

/** The first event named `name`, if the script printed one. */
export const findEvent = (run: ScriptRun, name: string): ScriptEvent | undefined => run.events.find((e) => e.event === name)

const parseEvent = (line: string): ScriptEvent | undefined => {
  let parsed: unknown
  try {
    parsed = JSON.parse(line)
  } catch {
    return undefined
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined
  const fields: Record<string, unknown> = Object.fromEntries(Object.entries(parsed))
  const event = fields["event"]
  return typeof event === "string" ? { ...fields, event } : undefined
}

const commonArgs = (options: CommonOptions): Array<string> => [
  "--url",
  options.url,
  "--token",
  options.token,
  ...(options.video === true ? ["--video"] : []),
  ...(options.hostCandidates ?? []).flatMap((address) => ["--host-candidate", address]),
  ...(options.connectTimeoutSeconds === undefined ? [] : ["--connect-timeout", String(options.connectTimeoutSeconds)])
]

const runScript = (name: string, args: ReadonlyArray<string>, options: CommonOptions): Promise<ScriptRun> =>
  new Promise((resolve, reject) => {
    // Without pyenv's PYTHONPATH/PYTHONHOME: Debian's interpreter, Debian's packages.
    const { PYTHONPATH: _path, PYTHONHOME: _home, ...env } = process.env
    const child = spawn(PYTHON, [script(name), ...args], {
      env: { ...env, PYTHONDONTWRITEBYTECODE: "1", PYTHONUNBUFFERED: "1" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const events: Array<ScriptEvent> = []
    let pending = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => {
      pending += chunk.toString("utf8")
      const lines = pending.split("\n")
      pending = lines.pop() ?? ""
      for (const line of lines) {
        const event = parseEvent(line)
        if (event === undefined) continue
        events.push(event)
        options.onEvent?.(event, (signal) => child.kill(signal))
      }
    })
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")))
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000)
    child.once("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.once("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, events, stderr })
    })
  })

/** Publishes `wav` (and a moving test pattern with `video`) to a WHIP endpoint; resolves when the script exits. */
export const runWhipPublish = (options: PublishOptions): Promise<ScriptRun> =>
  runScript("whip_publish.py", [
    ...commonArgs(options),
    "--wav",
    options.wav,
    ...(options.seconds === undefined ? [] : ["--seconds", String(options.seconds)]),
    ...(options.delete === true ? ["--delete"] : []),
    ...(options.wrongFingerprint === true ? ["--wrong-fingerprint"] : [])
  ], options)

/** Plays a WHEP endpoint for `seconds`, recording its audio to `out` (video frames are only counted). */
export const runWhepPlay = (options: PlayOptions): Promise<ScriptRun> =>
  runScript("whep_play.py", [...commonArgs(options), "--out", options.out, "--seconds", String(options.seconds)], options)
