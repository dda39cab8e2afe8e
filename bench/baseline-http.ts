// The baseline for http-health: a bare node:http handler answering what GET /health answers.
import { createServer } from "node:http"

const port = Number(process.env["PORT"])
createServer((_request, response) => {
  const body = JSON.stringify({ status: "healthy", timestamp: Date.now() })
  response.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
  response.end(body)
}).listen(port, "127.0.0.1")
