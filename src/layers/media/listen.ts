import { Option } from "effect"
import type { types } from "mediasoup"

/** What the transports of one worker listen on, from the media settings. */
export interface ListenSettings {
  readonly listenIp: string
  /** An IP or a host name, handed to clients in ICE candidates and plain-transport answers. */
  readonly announcedIp: Option.Option<string>
  readonly webRtcServer: boolean
  /** 0: a free port of the worker's range. */
  readonly rtcPort: number
  readonly iceConsentTimeoutSeconds: number
}

/** A worker's slice of RTC_MIN_PORT..RTC_MAX_PORT. */
export interface PortRange {
  readonly min: number
  readonly max: number
}

const listenInfo = (s: ListenSettings, protocol: types.TransportProtocol, where: { port: number } | { portRange: PortRange }): types.TransportListenInfo => ({
  protocol,
  ip: s.listenIp,
  ...Option.match(s.announcedIp, { onNone: () => ({}), onSome: (announcedAddress) => ({ announcedAddress }) }),
  ...("port" in where ? { port: where.port } : { portRange: { ...where.portRange } })
})

/** UDP and TCP, in that order (the UDP candidate is preferred). */
const udpAndTcp = (s: ListenSettings, where: { port: number } | { portRange: PortRange }) => [
  listenInfo(s, "udp", where),
  listenInfo(s, "tcp", where)
]

/** The WebRtcServer of worker `index`: one UDP and one TCP port (RTC_PORT + index, or a free one of its range). */
export const webRtcServerOptions = (s: ListenSettings, index: number, range: PortRange): types.WebRtcServerOptions => ({
  listenInfos: udpAndTcp(s, s.rtcPort === 0 ? { portRange: range } : { port: s.rtcPort + index })
})

/** A client's WebRTC transport: on the worker's WebRtcServer when there is one, else on ports of its range. */
export const webRtcTransportOptions = (
  s: ListenSettings,
  server: types.WebRtcServer | undefined,
  range: PortRange
): types.WebRtcTransportOptions => {
  const common = { enableUdp: true, enableTcp: true, preferUdp: true, enableSctp: true, iceConsentTimeout: s.iceConsentTimeoutSeconds }
  return server === undefined ? { ...common, listenInfos: udpAndTcp(s, { portRange: range }) } : { ...common, webRtcServer: server }
}

/** A plain (RTP) transport: always a port of the worker's range. */
export const plainListenInfo = (s: ListenSettings, range: PortRange): types.TransportListenInfo => listenInfo(s, "udp", { portRange: range })

/** Splits [min, max] into `n` contiguous, non-overlapping ranges (the first ones take the remainder). */
export const splitPorts = (min: number, max: number, n: number): ReadonlyArray<PortRange> => {
  const size = Math.floor((max - min + 1) / n)
  const extra = (max - min + 1) % n
  const ranges: Array<PortRange> = []
  let start = min
  for (let i = 0; i < n; i++) {
    const width = size + (i < extra ? 1 : 0)
    ranges.push({ min: start, max: start + width - 1 })
    start += width
  }
  return ranges
}
