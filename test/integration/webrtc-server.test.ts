import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { MediaServer } from "../../src/layers/MediaServer.ts"
import { record, request, signIn } from "../support/auth.ts"
import { mediaServer, startSession, user } from "../support/media.ts"

/** Two workers, each with a WebRtcServer on RTC_PORT + index; plain transports keep the range. */
const RTC_PORT = 47620
const Server = mediaServer({ MEDIASOUP_WORKERS: "2", RTC_MIN_PORT: "47600", RTC_MAX_PORT: "47619", RTC_PORT: String(RTC_PORT) })

interface Candidate {
  readonly protocol: string
  readonly port: number
  readonly ip: string
}
const candidatesOf = (json: Record<string, unknown>): ReadonlyArray<Candidate> => {
  const list = json["iceCandidates"]
  if (!Array.isArray(list)) throw new Error("no iceCandidates")
  return list.map((c: unknown) => {
    const r = record(c)
    return { protocol: String(r["protocol"]), port: Number(r["port"]), ip: String(r["ip"]) }
  })
}

layer(Server, { timeout: 60_000 })("WebRtcServer (one UDP and one TCP port per worker)", (it) => {
  it.effect("every session's WebRTC transports share their worker's two ports; plain transports take ports of the range", () =>
    Effect.gen(function*() {
      const media = yield* MediaServer
      const status = yield* media.status
      assert.deepStrictEqual(
        status.workers.map((w) => w.webRtcServer),
        [{ udp: RTC_PORT, tcp: RTC_PORT }, { udp: RTC_PORT + 1, tcp: RTC_PORT + 1 }]
      )
      const alice = yield* signIn(user("alice"))
      const sessions = [yield* startSession(alice.headers), yield* startSession(alice.headers), yield* startSession(alice.headers)]
      const seen: Array<{ worker: number; candidates: ReadonlyArray<Candidate> }> = []
      for (const id of sessions) {
        for (let i = 0; i < 2; i++) {
          const created = yield* request("POST", `/api/webrtc/${id}/transports`, undefined, alice.headers)
          assert.strictEqual(created.status, 201, created.text)
          const worker = (yield* media.status).sessions.find((s) => s.id === id)?.worker ?? -1
          seen.push({ worker, candidates: candidatesOf(created.json) })
        }
      }
      for (const { worker, candidates } of seen) {
        assert.deepStrictEqual(
          candidates.map((c) => [c.protocol, c.port, c.ip]).sort(),
          [["tcp", RTC_PORT + worker, "127.0.0.1"], ["udp", RTC_PORT + worker, "127.0.0.1"]]
        )
      }
      // Sessions on both workers, and two sessions sharing one worker's port.
      assert.sameMembers([...new Set(seen.map((s) => s.worker))], [0, 1])

      const plain = yield* request("POST", `/api/webrtc/${sessions[0]}/plain-transports`, { comedia: true }, alice.headers)
      assert.strictEqual(plain.status, 201, plain.text)
      const port = Number(plain.json["port"])
      assert.isTrue(port >= 47600 && port <= 47619, `plain transport port ${port} in the range`)
    }))
})
