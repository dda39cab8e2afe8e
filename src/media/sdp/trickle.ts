import type { types } from "mediasoup"
import { candidateLines } from "./answer.ts"

/** A trickle ICE SDP fragment (RFC 8840, `application/trickle-ice-sdpfrag`) as a WHIP/WHEP PATCH carries it. */
export interface SdpFragment {
  readonly ufrag?: string
  readonly pwd?: string
  readonly candidates: ReadonlyArray<string>
  readonly mids: ReadonlyArray<string>
  readonly endOfCandidates: boolean
}

const attribute = (line: string, name: string) => line.startsWith(`a=${name}:`) ? line.slice(name.length + 3).trim() : undefined

/** Lines it knows; undefined when the body is not a fragment (a line that is not `a=`, `m=` or `c=`). */
export const parseFragment = (text: string): SdpFragment | undefined => {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0)
  if (lines.some((l) => !/^[amc]=/.test(l))) return undefined
  const pick = (name: string) => lines.map((l) => attribute(l, name)).filter((v): v is string => v !== undefined)
  const [ufrag] = pick("ice-ufrag")
  const [pwd] = pick("ice-pwd")
  return {
    ...(ufrag === undefined ? {} : { ufrag }),
    ...(pwd === undefined ? {} : { pwd }),
    candidates: pick("candidate"),
    mids: pick("mid"),
    endOfCandidates: lines.includes("a=end-of-candidates")
  }
}

/** The answer to an ICE restart: the server's new credentials and its candidates (RFC 9725 §4.4.1.2). */
export const restartFragment = (mids: ReadonlyArray<string>, ice: types.IceParameters, candidates: ReadonlyArray<types.IceCandidate>): string => {
  const lines = [`a=ice-lite`, `a=ice-ufrag:${ice.usernameFragment}`, `a=ice-pwd:${ice.password}`]
  const [first] = mids
  if (first !== undefined) {
    lines.push("m=audio 9 UDP/TLS/RTP/SAVPF 0", `a=mid:${first}`)
    for (const c of candidateLines(candidates)) {
      lines.push(
        `a=candidate:${c.foundation} ${c.component} ${c.transport} ${c.priority} ${c.ip} ${c.port} typ ${c.type}${
          c.tcptype === undefined ? "" : ` tcptype ${c.tcptype}`
        }`
      )
    }
    lines.push("a=end-of-candidates")
  }
  return lines.join("\r\n") + "\r\n"
}
