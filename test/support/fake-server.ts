import { Effect } from "effect"
import * as http from "node:http"
import { setTimeout as sleep } from "node:timers/promises"

/** A request's whole body as UTF-8 text. */
export const readBody = (req: http.IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", reject)
  })

/** A fake made by `make`, started for the scope's life and stopped with it: `Layer.effect(Tag, startedFake(...))`. */
export const startedFake = <F extends { readonly start: () => Promise<void>; readonly stop: () => Promise<void> }>(make: () => F) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const fake = make()
      await fake.start()
      return fake
    }),
    (fake) => Effect.promise(() => fake.stop())
  )

/**
 * What the fakes of external services (LiveKit, Dashboard, Communication Service) share: a real
 * node:http server with a stable port across `down()`/`up()`, and fault injection — `latencyMs`
 * (each answer delayed), `failNext(n, status)`, `down()` (listener and every open connection
 * closed: clients get ECONNREFUSED) and `up()` (the same port again).
 */
export abstract class FakeHttpServer {
  latencyMs = 0
  protected readonly server: http.Server
  private failures = 0
  private failStatus = 503
  private port_ = 0
  private host = "127.0.0.1"
  private listening = false

  constructor() {
    this.server = http.createServer((req, res) => void this.handle(req, res).catch(() => res.destroy()))
  }

  /** Answers one request; call `injected()` where the fault injection applies. */
  protected abstract handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void>

  get port(): number {
    return this.port_
  }
  get url(): string {
    return `http://${this.host === "0.0.0.0" || this.host === "::" ? "127.0.0.1" : this.host}:${this.port_}`
  }

  /** Listens on `host:port` (0: a free port, then kept for `up()`). */
  async start(port = 0, host = "127.0.0.1"): Promise<void> {
    this.host = host
    await this.listen(port)
  }

  stop(): Promise<void> {
    return this.down()
  }

  /** Stops listening and cuts every open connection: clients get ECONNREFUSED (or a reset mid-call). */
  async down(): Promise<void> {
    if (!this.listening) return
    this.listening = false
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    this.server.closeAllConnections()
    await closed
    // A turn of the event loop for clients in this process to see their pooled connections closed: their next call
    // then dials anew and is refused, rather than failing on a connection it thought open.
    await sleep(10)
  }

  /** Listens again on the port `start` got. */
  up(): Promise<void> {
    return this.listen(this.port_)
  }

  /** The next `count` requests (where the fake applies injection) fail with this HTTP status. */
  failNext(count: number, status = 503): void {
    this.failures = count
    this.failStatus = status
  }

  /** Waits `latencyMs`; then the status of an injected failure when one is due. */
  protected async injected(): Promise<number | undefined> {
    if (this.latencyMs > 0) await sleep(this.latencyMs)
    if (this.failures === 0) return undefined
    this.failures -= 1
    return this.failStatus
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject)
      this.server.listen(port, this.host, () => {
        this.server.off("error", reject)
        const address = this.server.address()
        if (address !== null && typeof address === "object") this.port_ = address.port
        this.listening = true
        resolve()
      })
    })
  }
}
