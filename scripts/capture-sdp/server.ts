/**
 * Maintenance tool, not part of the tests: captures real browser SDP offers for test/fixtures/sdp/.
 * Re-run with `bash scripts/capture-sdp/run.sh chromium` (or `firefox`), which installs nothing: it needs
 * /usr/bin/chromium (`apt-get install -y chromium`) or firefox-esr (`apt-get install -y --no-install-recommends
 * firefox-esr`). run.sh starts this server (`node scripts/capture-sdp/server.ts --out <dir> --prefix
 * chromium-156 --port 8765`), opens capture-page.html in the headless browser with fake media devices, waits
 * until the page POSTs /done, then kills the browser. Each captured body is written byte for byte (CRLF kept)
 * to <out>/<prefix>-<suffix>, e.g. chromium-156-audio.sdp; the page's log lines are printed here. Captures
 * contain this machine's host addresses in a=candidate lines; review them before committing.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import { readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { parseArgs } from "node:util"

const { values } = parseArgs({
  options: {
    out: { type: "string", default: "test/fixtures/sdp" },
    prefix: { type: "string" },
    port: { type: "string", default: "8765" },
    "timeout-ms": { type: "string", default: "90000" }
  }
})
const prefix = values.prefix
if (prefix === undefined) throw new Error("--prefix is required, e.g. --prefix chromium-156")
const page = new URL("./capture-page.html", import.meta.url)
/** A suffix the page may write, e.g. `audio.sdp`, `trickle.sdpfrag`; nothing with a slash or dots in the stem. */
const SUFFIX = /^[a-z][a-z-]*\.(sdp|sdpfrag)$/

const readBody = async (request: IncomingMessage): Promise<Buffer> => {
  const chunks: Array<Buffer> = []
  for await (const chunk of request) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)))
  return Buffer.concat(chunks)
}

const written: Array<string> = []
const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
  const path = new URL(request.url ?? "/", "http://localhost").pathname
  const body = await readBody(request)
  if (request.method === "GET" && (path === "/" || path === "/capture-page.html")) {
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(await readFile(page))
  } else if (request.method === "POST" && path.startsWith("/capture/") && SUFFIX.test(path.slice("/capture/".length))) {
    const file = join(values.out, `${prefix}-${path.slice("/capture/".length)}`)
    await writeFile(file, body)
    written.push(file)
    console.log(`wrote ${file} (${body.length} bytes)`)
    response.writeHead(204).end()
  } else if (request.method === "POST" && path === "/log") {
    console.log(`page: ${body.toString("utf8")}`)
    response.writeHead(204).end()
  } else if (request.method === "POST" && path === "/done") {
    const ok = body.toString("utf8") === "ok"
    console.log(`done (${ok ? "ok" : "with an error"}), ${written.length} file(s)`)
    response.writeHead(204).end(() => process.exit(ok ? 0 : 1))
  } else {
    response.writeHead(404).end()
  }
}

const server = createServer((request, response) => {
  handle(request, response).catch((error: unknown) => {
    console.error(error)
    response.writeHead(500).end()
  })
})

server.listen(Number(values.port), "127.0.0.1", () => console.log(`serving http://127.0.0.1:${values.port}/`))
setTimeout(() => {
  console.error(`timed out after ${values["timeout-ms"]} ms, ${written.length} file(s) written`)
  process.exit(1)
}, Number(values["timeout-ms"])).unref()
