import { Effect } from "effect"
import { mkdir } from "node:fs/promises"
import { DatabaseStartFailed } from "./errors.ts"

export interface EmbeddedServer {
  readonly host: string
  readonly port: number
}

const failed = (dataDir: string) => (cause: unknown) =>
  new DatabaseStartFailed({ stage: "embedded", target: dataDir, reason: cause instanceof Error ? cause.message : String(cause) })

/**
 * PGlite on `dataDir` (persisted), served over the Postgres wire protocol on 127.0.0.1 at a
 * free port. The socket server takes one connection at a time. Closing the scope stops the
 * server, then PGlite.
 */
export const embeddedServer = (dataDir: string) =>
  Effect.gen(function*() {
    // Imported here, not at load: a service on an external Postgres never needs them.
    const [{ PGlite }, { PGLiteSocketServer }] = yield* Effect.tryPromise({
      try: () => Promise.all([import("@electric-sql/pglite"), import("@electric-sql/pglite-socket")]),
      catch: failed(dataDir)
    })
    const db = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          await mkdir(dataDir, { recursive: true })
          return PGlite.create(dataDir)
        },
        catch: failed(dataDir)
      }),
      (db) => Effect.tryPromise(() => db.close()).pipe(Effect.ignore)
    )
    const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 1 })
    yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => server.start(), catch: failed(dataDir) }),
      () => Effect.tryPromise(() => server.stop()).pipe(Effect.ignore)
    )
    // getServerConn() is "host:port" with the port the OS picked for port 0.
    const port = Number(server.getServerConn().split(":").pop())
    return { host: "127.0.0.1", port } satisfies EmbeddedServer
  })
