import { spawn } from "node:child_process"
import { createSocket } from "node:dgram"
import { DEFAULT_TONE_MS, DEFAULT_TONES } from "./tones.ts"

export interface OpusRtpOptions {
  readonly tones?: ReadonlyArray<number>
  readonly toneMs?: number
  /** Channels encoded (WebRTC Opus is "opus/48000/2"; 1 or 2). */
  readonly channels?: 1 | 2
  readonly payloadType?: number
  /** Opus frame duration, ms (default 20). */
  readonly frameMs?: number
  /** Pace the output in real time (`-re`); default false: as fast as ffmpeg goes. */
  readonly realtime?: boolean
}

/**
 * ffmpeg arguments that encode a tone sequence (lavfi sines, concatenated) to Opus and send it as
 * RTP to `host:port`.
 */
export const ffmpegOpusRtpArgs = (host: string, port: number, options: OpusRtpOptions = {}): Array<string> => {
  const tones = options.tones ?? DEFAULT_TONES
  const seconds = (options.toneMs ?? DEFAULT_TONE_MS) / 1000
  const inputs = tones.flatMap((f) => [
    ...(options.realtime ? ["-re"] : []),
    "-f",
    "lavfi",
    "-i",
    `sine=frequency=${f}:duration=${seconds}:sample_rate=48000`
  ])
  const filter = `${tones.map((_, i) => `[${i}:a]`).join("")}concat=n=${tones.length}:v=0:a=1[a]`
  return [
    "-hide_banner",
    "-loglevel",
    "error",
    "-nostdin",
    ...inputs,
    "-filter_complex",
    filter,
    "-map",
    "[a]",
    "-ac",
    String(options.channels ?? 2),
    "-c:a",
    "libopus",
    "-b:a",
    "64k",
    "-frame_duration",
    String(options.frameMs ?? 20),
    "-payload_type",
    String(options.payloadType ?? 111),
    "-f",
    "rtp",
    `rtp://${host}:${port}`
  ]
}

/** Runs ffmpeg to completion; rejects with its stderr on a non-zero exit. */
export const runFfmpeg = (args: ReadonlyArray<string>): Promise<void> =>
  new Promise((resolve, reject) => {
    const child = spawn("ffmpeg", args, { stdio: ["ignore", "ignore", "pipe"] })
    let stderr = ""
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()))
    child.on("error", reject)
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}: ${stderr}`))))
  })

/**
 * Encodes a tone sequence to Opus RTP with ffmpeg, sent to a UDP socket bound on 127.0.0.1 here,
 * and returns the packets in arrival order (each with its arrival time).
 */
export const captureOpusRtp = async (
  options: OpusRtpOptions = {}
): Promise<ReadonlyArray<{ readonly packet: Buffer; readonly arrivalMs: number }>> => {
  const socket = createSocket({ type: "udp4", recvBufferSize: 4 * 1024 * 1024 })
  const packets: Array<{ packet: Buffer; arrivalMs: number }> = []
  socket.on("message", (packet) => packets.push({ packet, arrivalMs: Date.now() }))
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve))
  try {
    await runFfmpeg(ffmpegOpusRtpArgs("127.0.0.1", socket.address().port, options))
    // Let the last datagrams land.
    let count = -1
    while (count !== packets.length) {
      count = packets.length
      await new Promise((r) => setTimeout(r, 100))
    }
    return packets
  } finally {
    socket.close()
  }
}
