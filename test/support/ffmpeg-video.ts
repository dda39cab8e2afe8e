import { execFile } from "node:child_process"
import { createSocket } from "node:dgram"
import { runFfmpeg } from "./ffmpeg-rtp.ts"
import type { VideoCodec } from "../../src/media/classify.ts"

/** Frames between key frames in every encode here (`-g`, and the same minimum). */
export const VIDEO_GOP = 30
export const VIDEO_FPS = 30
export const VIDEO_SECONDS = 3

export const VIDEO_PAYLOAD_TYPES: Record<VideoCodec, number> = { H264: 96, H265: 97, VP8: 98, VP9: 99 }

/** Encoder arguments per codec: known GOP, no B-frames, no scene-cut key frames. */
const encoderArgs = (codec: VideoCodec): Array<string> => {
  switch (codec) {
    case "H264":
      return ["-c:v", "libx264", "-tune", "zerolatency", "-profile:v", "baseline", "-sc_threshold", "0"]
    case "H265":
      return [
        "-c:v",
        "libx265",
        "-x265-params",
        `keyint=${VIDEO_GOP}:min-keyint=${VIDEO_GOP}:scenecut=0:log-level=error`
      ]
    case "VP8":
      return ["-c:v", "libvpx", "-deadline", "realtime"]
    case "VP9":
      return ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-strict", "experimental"]
  }
}

/** ffmpeg arguments encoding the test pattern with `codec`; `output` args are appended (format and target). */
export const ffmpegVideoArgs = (codec: VideoCodec, output: ReadonlyArray<string>): Array<string> => [
  "-hide_banner",
  "-loglevel",
  "error",
  "-nostdin",
  "-f",
  "lavfi",
  "-i",
  `testsrc=size=320x240:rate=${VIDEO_FPS}`,
  "-t",
  String(VIDEO_SECONDS),
  "-pix_fmt",
  "yuv420p",
  ...encoderArgs(codec),
  "-g",
  String(VIDEO_GOP),
  "-keyint_min",
  String(VIDEO_GOP),
  "-bf",
  "0",
  ...output
]

/**
 * Encodes the test pattern to RTP with `codec`, sent to a UDP socket bound on 127.0.0.1 here, and
 * returns the packets in arrival order.
 */
export const captureVideoRtp = async (codec: VideoCodec): Promise<ReadonlyArray<Buffer>> => {
  const socket = createSocket({ type: "udp4", recvBufferSize: 8 * 1024 * 1024 })
  const packets: Array<Buffer> = []
  socket.on("message", (packet) => packets.push(packet))
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve))
  try {
    await runFfmpeg(ffmpegVideoArgs(codec, [
      "-payload_type",
      String(VIDEO_PAYLOAD_TYPES[codec]),
      "-f",
      "rtp",
      `rtp://127.0.0.1:${socket.address().port}?pkt_size=1200`
    ]))
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

const containerFor: Record<VideoCodec, ReadonlyArray<string>> = {
  H264: ["-f", "h264"],
  H265: ["-f", "hevc"],
  VP8: ["-f", "ivf"],
  VP9: ["-f", "ivf"]
}

/**
 * The same encode written to a file, then `ffprobe -show_frames`: the indices of the frames the
 * encoder made key frames (in output order, which is decode order with `-bf 0`).
 */
export const probeKeyFrames = async (codec: VideoCodec, path: string): Promise<{ frames: number; keys: Array<number> }> => {
  await runFfmpeg(ffmpegVideoArgs(codec, ["-y", ...containerFor[codec], path]))
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(
      "ffprobe",
      ["-v", "error", "-select_streams", "v:0", "-show_frames", "-show_entries", "frame=key_frame,pict_type", "-of", "csv=p=0", path],
      { maxBuffer: 16 * 1024 * 1024 },
      (error: Error | null, out) => (error === null ? resolve(out) : reject(error))
    )
  )
  const lines = stdout.split("\n").map((l) => l.trim()).filter((l) => l.length > 0)
  const keys: Array<number> = []
  lines.forEach((line, index) => {
    if (line.split(",")[0] === "1") keys.push(index)
  })
  return { frames: lines.length, keys }
}
