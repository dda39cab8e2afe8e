import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Health } from "../../src/layers/Health.ts"
import { MediaServer } from "../../src/layers/MediaServer.ts"
import { record, request, signIn, str } from "../support/auth.ts"
import { eventually, mediaServer, opusRtpParameters, startSession, user } from "../support/media.ts"

/** The `/status` section `asr` (open sink streams). */
const asrStatus = Effect.map(Effect.flatMap(Health, (h) => h.sections), (s) => record(s["asr"]))

const sleep = (ms: number) => Effect.promise(() => new Promise((r) => setTimeout(r, ms)))

/** Stops `id`, retrying while it is still pending (409) until the racing produce has activated it. */
const stopWhenActive = (id: string, headers: Record<string, string>) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 400; attempt++) {
      const res = yield* request("POST", `/api/session/${id}/stop`, {}, headers)
      if (res.status === 200) return
      assert.strictEqual(res.status, 409, res.text)
      yield* sleep(attempt < 50 ? 0 : 5)
    }
    assert.fail(`session ${id} never became stoppable`)
  })

describe("audio pipeline lifecycle", () => {
  layer(mediaServer({ LOG_LEVEL: "warn" }), { timeout: 240_000 })("stops racing produce (recording sink)", (it) => {
    it.effect("200 sessions, each stopped while its producer's pipeline starts: every sink stream and consumer is closed", () =>
      Effect.gen(function*() {
        const sessions = 200
        const alice = yield* signIn(user("alice"))
        const run = (n: number) =>
          Effect.gen(function*() {
            const id = yield* startSession(alice.headers)
            const plain = yield* request("POST", `/api/webrtc/${id}/plain-transports`, { comedia: true }, alice.headers)
            assert.strictEqual(plain.status, 201, plain.text)
            const transportId = str(plain.json["id"])
            const produce = request("POST", `/api/webrtc/${id}/plain-transports/${transportId}/produce`, { kind: "audio", rtpParameters: opusRtpParameters() }, alice.headers)
            // The stop lands at varying points of the produce and of the pipeline start it forks.
            const [produced] = yield* Effect.all([produce, Effect.andThen(sleep(n % 7), stopWhenActive(id, alice.headers))], { concurrency: 2 })
            assert.strictEqual(produced.status, 201, produced.text)
            return id
          })
        const ids = yield* Effect.forEach(Array.from({ length: sessions }, (_, n) => n), run, { concurrency: 16 })
        assert.strictEqual(new Set(ids).size, sessions)
        const media = yield* MediaServer
        yield* eventually(Effect.map(asrStatus, (s) => s["streams"] === 0), "every recording closed", 20_000).pipe(
          Effect.catchDefect(() => Effect.flatMap(asrStatus, (s) => Effect.die(`recordings still open: ${JSON.stringify(s)}`)))
        )
        // The race was real: pipelines did open recordings before their sessions ended.
        assert.isAbove(Number((yield* asrStatus)["recordingsFinished"]), sessions / 4)
        const status = yield* media.status
        assert.deepStrictEqual(status.sessions.filter((s) => ids.includes(s.id)), [])
      }), 240_000)
  })
})
