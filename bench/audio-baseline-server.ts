// bench/audio-ingest's baseline: a bare mediasoup server (audio-baseline-media.ts) behind just the
// routes of the service's API that the load generator calls, with the same request and response
// shapes (Authorization ignored), so one generator drives both. No database, Redis, gRPC or Effect
// runtime: the media settings are read once with the service's own config reader (the same
// environment gives the same workers and ports). POST /bench/count answers what
// RemoteFakeAsr.count answers for the service. Listens on 127.0.0.1:PORT. With ASR_GATEWAY_URL,
// every chunk is also written to that gateway (audio-baseline-asr.ts: the "baseline + ASR" phase).
import { Effect, Schema } from "effect"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import { ConfigSource } from "../src/config/key.ts"
import { media } from "../src/config/media.ts"
import { ConnectTransport, CreatePlainTransport, Produce, ProduceData } from "../src/schemas/webrtc.ts"
import { baselineAsr } from "./audio-baseline-asr.ts"
import { startBaselineMedia } from "./audio-baseline-media.ts"
import { SequenceLedger } from "./sequence-ledger.ts"

const CountRequest = Schema.Struct({ ranges: Schema.Array(Schema.Struct({ sessionId: Schema.String, from: Schema.Number, to: Schema.Number })) })

const settings = await Effect.runPromise(Effect.provideService(media, ConfigSource, { values: process.env, read: new Set() }))
const ledger = new SequenceLedger()
const gatewayUrl = process.env["ASR_GATEWAY_URL"]
const asr = gatewayUrl === undefined ? undefined : baselineAsr(gatewayUrl)
const server = await startBaselineMedia(settings, (sessionId, producerId, path) => {
  const stream = asr?.open(sessionId, producerId, path)
  return {
    chunk: (sequence, captureTimeMs, pcm) => {
      ledger.add(sessionId, sequence)
      stream?.write(sequence, captureTimeMs, pcm)
    },
    end: () => stream?.end()
  }
})

const body = async (request: IncomingMessage): Promise<unknown> => {
  const parts: Array<Buffer> = []
  for await (const part of request) if (Buffer.isBuffer(part)) parts.push(part)
  const text = Buffer.concat(parts).toString("utf8")
  return text.length === 0 ? {} : JSON.parse(text)
}

/** A route's answer: its status and JSON body (none for 204). */
type Answer = readonly [status: number, body?: unknown]

const route = async (method: string, path: string, request: IncomingMessage): Promise<Answer> => {
  if (method === "GET" && path === "/ready") return [200, { ready: true }]
  if (method !== "POST") return [404]
  if (path === "/api/session") return [201, await server.createSession()]
  if (path === "/bench/count") return [200, { received: ledger.count(Schema.decodeUnknownSync(CountRequest)(await body(request)).ranges) }]
  const m = /^\/api\/webrtc\/([^/]+)\/(plain-transports|transports)(?:\/([^/]+)\/(connect|produce|produce-data))?$/.exec(path)
  const [, sessionId = "", kind, transportId = "", action] = m ?? []
  if (m === null) return [404]
  if (action === undefined) {
    return kind === "transports"
      ? [201, await server.createWebRtcTransport(sessionId)]
      : [201, await server.createPlainTransport(sessionId, Schema.decodeUnknownSync(CreatePlainTransport)(await body(request)))]
  }
  if (action === "connect" && kind === "transports") {
    await server.connect(sessionId, transportId, Schema.decodeUnknownSync(ConnectTransport)(await body(request)))
    return [204]
  }
  if (action === "produce") return [201, await server.produce(sessionId, transportId, Schema.decodeUnknownSync(Produce)(await body(request)))]
  if (action === "produce-data" && kind === "transports") {
    return [201, await server.produceData(sessionId, transportId, Schema.decodeUnknownSync(ProduceData)(await body(request)))]
  }
  return [404]
}

const answer = (response: ServerResponse, [status, json]: Answer) => {
  if (json === undefined) return response.writeHead(status).end()
  response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(json))
}

const http = createServer((request, response) => {
  const path = new URL(request.url ?? "/", "http://localhost").pathname
  route(request.method ?? "GET", path, request).then(
    (a) => answer(response, a),
    (error: unknown) => answer(response, [500, { detail: String(error) }])
  )
})
http.listen(Number(process.env["PORT"] ?? 0), "127.0.0.1")

const shutdown = () => {
  http.close()
  server.close()
  asr?.close()
  process.exit(0)
}
process.on("SIGTERM", shutdown)
process.on("SIGINT", shutdown)
