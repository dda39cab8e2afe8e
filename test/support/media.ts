import { assert } from "@effect/vitest"
import { Effect } from "effect"
import { readdirSync } from "node:fs"
import { join } from "node:path"
import { ApiRoutes } from "../../src/adapters/http/routes.ts"
import { serveHttp } from "../../src/layers/HttpServer.ts"
import { JWT_SECRET, PROVISIONING_KEY, request, str } from "./auth.ts"
import { onFreshDatabase } from "./server.ts"
import { SessionId } from "../../src/schemas/ids.ts"

/** The API on a fresh database with mediasoup workers on loopback, a port range of its own. */
export const mediaServer = (env: Record<string, string>) =>
  onFreshDatabase(serveHttp(ApiRoutes, 0, "127.0.0.1"), {
    JWT_SECRET,
    AUTH_PROVISIONING_KEY: PROVISIONING_KEY,
    MEDIASOUP_LISTEN_IP: "127.0.0.1",
    SESSION_SWEEP_INTERVAL_MS: "3600000",
    RATE_LIMIT_AUTH_PER_MINUTE: "100000",
    RATE_LIMIT_SESSION_PER_MINUTE: "100000",
    RATE_LIMIT_DEFAULT_PER_MINUTE: "100000",
    ...env
  })

/** Opus as ffmpeg's RTP muxer sends it (`-payload_type 100 -ssrc 1111`). */
export const opusRtpParameters = (payloadType = 100, ssrc = 1111) => ({
  codecs: [{ mimeType: "audio/opus", payloadType, clockRate: 48000, channels: 2, parameters: { "sprop-stereo": 1 } }],
  encodings: [{ ssrc }]
})

export const user = (name: string) => `${name}-${crypto.randomUUID().slice(0, 8)}`

export const startSession = (headers: Record<string, string>) =>
  Effect.gen(function*() {
    const res = yield* request("POST", "/api/session", {}, headers)
    assert.strictEqual(res.status, 201, res.text)
    return SessionId.make(str(res.json["id"]))
  })

/** Polls `check` every 50 ms until it holds (or dies after `ms`). */
export const eventually = <E, R>(check: Effect.Effect<boolean, E, R>, what: string, ms = 10_000): Effect.Effect<void, E, R> =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.die(`timed out waiting for ${what}`)
      // Real time: it.effect runs on the TestClock, and mediasoup and the sockets do not.
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
    }
  })

/** The WAV files of a session's audio producers (`<dataDir>/recordings/<sessionId>/<producerId>.wav`), none yet: []. */
export const sessionRecordings = (dataDir: string, sessionId: string): Array<string> => {
  const directory = join(dataDir, "recordings", sessionId)
  try {
    return readdirSync(directory).filter((f) => f.endsWith(".wav")).sort().map((f) => join(directory, f))
  } catch {
    return []
  }
}
