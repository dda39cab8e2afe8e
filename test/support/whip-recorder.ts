import { randomBytes } from "node:crypto"
import { createSocket } from "node:dgram"
import * as http from "node:http"
import { readBody } from "./fake-server.ts"

/**
 * A stand-in WHIP endpoint that records every request. `answer: "reject"` answers each POST 500
 * (the offer is all one learns); `"fake"` answers 201 with an SDP answer built from the offer, a
 * Location and an ETag, so the client goes on to trickle (PATCH) and, when stopped, DELETE. Its ICE
 * candidate is a UDP socket here that only counts what arrives (no STUN answers: ICE never connects).
 */

export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
}

export interface WhipRecorderOptions {
  /** Where to listen (and, for "fake", the address of the answer's candidate). */
  readonly host: string
  readonly port?: number
  readonly answer: "reject" | "fake"
}

export interface WhipRecorder {
  /** http://host:port + path (default /whip). */
  readonly url: (path?: string) => string
  readonly requests: ReadonlyArray<RecordedRequest>
  /** Datagrams that reached the fake answer's candidate (the client's ICE checks). */
  readonly udpDatagrams: () => number
  /** Resolves with the first recorded request that matches, now or later. */
  readonly waitFor: (match: (request: RecordedRequest) => boolean, timeoutMs?: number) => Promise<RecordedRequest>
  readonly close: () => Promise<void>
}

export const RESOURCE_ETAG = "\"recorder-1\""

const fakeFingerprint = (): string => [...randomBytes(32)].map((b) => b.toString(16).padStart(2, "0").toUpperCase()).join(":")

/** A recvonly answer to `offer`: each m-line kept with its codecs, one host candidate at `host:port`. */
export const fakeAnswer = (offer: string, host: string, port: number): string => {
  const lines = offer.split(/\r?\n/).filter((line) => line.length > 0)
  const firstMedia = lines.findIndex((line) => line.startsWith("m="))
  const session = firstMedia === -1 ? lines : lines.slice(0, firstMedia)
  const sections: Array<Array<string>> = []
  for (const line of firstMedia === -1 ? [] : lines.slice(firstMedia)) {
    if (line.startsWith("m=")) sections.push([line])
    else sections[sections.length - 1]?.push(line)
  }
  const ufrag = randomBytes(6).toString("hex")
  const pwd = randomBytes(16).toString("hex")
  const fingerprint = fakeFingerprint()
  const media = sections.flatMap(([mLine = "", ...attributes]) => {
    const [kind = "audio", , , ...payloadTypes] = mLine.slice(2).split(" ")
    const codecLine = (attribute: string): boolean =>
      payloadTypes.some((pt) => attribute.startsWith(`a=rtpmap:${pt} `) || attribute.startsWith(`a=fmtp:${pt} `))
    return [
      `m=${kind} 9 UDP/TLS/RTP/SAVPF ${payloadTypes.join(" ")}`,
      `c=IN IP4 ${host}`,
      ...attributes.filter((attribute) => attribute.startsWith("a=mid:")),
      "a=recvonly",
      "a=rtcp-mux",
      "a=setup:passive",
      `a=ice-ufrag:${ufrag}`,
      `a=ice-pwd:${pwd}`,
      `a=fingerprint:sha-256 ${fingerprint}`,
      ...attributes.filter(codecLine),
      `a=candidate:1 1 udp 2130706431 ${host} ${port} typ host`,
      "a=end-of-candidates"
    ]
  })
  const bundle = session.filter((line) => line.startsWith("a=group:BUNDLE"))
  const head = ["v=0", `o=- ${Date.now()} 1 IN IP4 ${host}`, "s=-", "t=0 0", ...bundle]
  // whip-client wants "v=0\r\n" first and CRLF line ends.
  return [...head, ...media].join("\r\n") + "\r\n"
}

export const startWhipRecorder = async (options: WhipRecorderOptions): Promise<WhipRecorder> => {
  const requests: Array<RecordedRequest> = []
  const waiters = new Set<(request: RecordedRequest) => void>()
  let datagrams = 0
  let resources = 0
  const udp = createSocket("udp4")
  udp.on("message", () => datagrams++)
  await new Promise<void>((resolve) => udp.bind(0, options.host, resolve))

  const respond = (request: RecordedRequest, res: http.ServerResponse): void => {
    if (request.method === "OPTIONS") return void res.writeHead(204, { "Accept-Post": "application/sdp" }).end()
    if (options.answer === "reject") return void res.writeHead(500).end()
    if (request.method === "POST") {
      const location = `/whip/resource/${++resources}`
      res.writeHead(201, { "Content-Type": "application/sdp", Location: location, ETag: RESOURCE_ETAG })
      return void res.end(fakeAnswer(request.body, options.host, udp.address().port))
    }
    if (request.method === "PATCH") return void res.writeHead(204).end()
    if (request.method === "DELETE") return void res.writeHead(200).end()
    res.writeHead(405).end()
  }

  const server = http.createServer((req, res) => {
    void readBody(req).then((body) => {
      const request: RecordedRequest = { method: req.method ?? "", path: req.url ?? "", headers: req.headers, body }
      requests.push(request)
      respond(request, res)
      waiters.forEach((waiter) => waiter(request))
    }, () => res.destroy())
  })
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host, resolve))
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0

  const waitFor = (match: (request: RecordedRequest) => boolean, timeoutMs = 10_000): Promise<RecordedRequest> => {
    const found = requests.find(match)
    if (found !== undefined) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const waiter = (request: RecordedRequest): void => {
        if (!match(request)) return
        clearTimeout(timer)
        waiters.delete(waiter)
        resolve(request)
      }
      const timer = setTimeout(() => {
        waiters.delete(waiter)
        const seen = requests.map((r) => `${r.method} ${r.path}`).join(", ")
        reject(new Error(`no matching request within ${timeoutMs} ms (seen: ${seen || "none"})`))
      }, timeoutMs)
      waiters.add(waiter)
    })
  }

  const close = async (): Promise<void> => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    await new Promise<void>((resolve) => udp.close(() => resolve()))
  }

  return {
    url: (path = "/whip") => `http://${options.host}:${port}${path}`,
    requests,
    udpDatagrams: () => datagrams,
    waitFor,
    close
  }
}
