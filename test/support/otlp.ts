import { Effect, type Scope } from "effect"
import { createServer } from "node:http"

export interface ReceivedSpan {
  readonly name: string
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string
  readonly attributes: Record<string, unknown>
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null
const list = (u: unknown): ReadonlyArray<unknown> => (Array.isArray(u) ? u : [])

/** OTLP/JSON `ExportTraceServiceRequest` -> flat spans (attribute values unwrapped). */
const spansOf = (body: unknown): Array<ReceivedSpan> =>
  list(isRecord(body) ? body["resourceSpans"] : undefined).flatMap((rs) =>
    list(isRecord(rs) ? rs["scopeSpans"] : undefined).flatMap((ss) =>
      list(isRecord(ss) ? ss["spans"] : undefined).filter(isRecord).map((span) => ({
        name: String(span["name"]),
        traceId: String(span["traceId"]),
        spanId: String(span["spanId"]),
        parentSpanId: typeof span["parentSpanId"] === "string" ? span["parentSpanId"] : "",
        attributes: Object.fromEntries(
          list(span["attributes"]).filter(isRecord).map((a) => {
            const value = isRecord(a["value"]) ? Object.values(a["value"])[0] : undefined
            return [String(a["key"]), value]
          })
        )
      }))
    )
  )

/**
 * A real OTLP/HTTP trace receiver on 127.0.0.1 (JSON encoding, what the exporter sends):
 * yields its base URL and the spans received so far.
 */
export const otlpReceiver: Effect.Effect<{ readonly url: string; readonly spans: Array<ReceivedSpan> }, never, Scope.Scope> = Effect.acquireRelease(
  Effect.callback<{ url: string; spans: Array<ReceivedSpan>; close: () => void }>((resume) => {
    const spans: Array<ReceivedSpan> = []
    const server = createServer((request, response) => {
      const chunks: Array<Buffer> = []
      request.on("data", (c: Buffer) => chunks.push(c))
      request.on("end", () => {
        if (request.url === "/v1/traces") spans.push(...spansOf(JSON.parse(Buffer.concat(chunks).toString("utf8"))))
        response.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, spans, close: () => server.close() }))
    })
  }),
  (receiver) => Effect.sync(receiver.close)
)
