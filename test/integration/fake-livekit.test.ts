import * as http from "node:http"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { AccessToken, ParticipantInfo_State, RoomServiceClient, ServerError, TrackSource, TrackType, WebhookReceiver } from "livekit-server-sdk"
import { FakeLiveKit } from "../support/fake-livekit.ts"

const API_KEY = "devkey"
const API_SECRET = "fake-livekit-test-secret"

interface Delivery {
  readonly body: string
  readonly authorization: string
  readonly contentType: string
}

/** A webhook receiver on 127.0.0.1 that keeps every delivery and answers 200. */
const startReceiver = async () => {
  const deliveries: Array<Delivery> = []
  const server = http.createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => {
      deliveries.push({
        body: Buffer.concat(chunks).toString("utf8"),
        authorization: req.headers.authorization ?? "",
        contentType: req.headers["content-type"] ?? ""
      })
      res.end("ok")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  return {
    deliveries,
    url: `http://127.0.0.1:${port}/livekit`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

/** The rejection of `promise` (fails the test if it resolves). */
const rejection = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error("expected a rejection")
}

const causeCode = (error: unknown): unknown =>
  error instanceof Error && typeof error.cause === "object" && error.cause !== null && "code" in error.cause ? error.cause.code : undefined

describe("FakeLiveKit", () => {
  const fake = new FakeLiveKit({ apiKey: API_KEY, apiSecret: API_SECRET })
  let client: RoomServiceClient
  let receiver: Awaited<ReturnType<typeof startReceiver>>

  beforeAll(async () => {
    await fake.start()
    receiver = await startReceiver()
    client = new RoomServiceClient(fake.url, API_KEY, API_SECRET, { failover: false, requestTimeout: 5 })
    await fake.addRoom("lobby", { metadata: "m0" })
    await fake.join("lobby", "alice", { name: "Alice", metadata: "{\"role\":\"host\"}" })
    await fake.join("lobby", "bob")
    await fake.publishTrack("lobby", "alice", { kind: "audio" })
  })
  afterAll(async () => {
    await fake.stop()
    await receiver.close()
  })

  it("answers the SDK's RoomService calls with the state, in protobuf JSON", async () => {
    const [room, ...others] = await client.listRooms()
    expect(others).toEqual([])
    expect(room?.name).toBe("lobby")
    expect(room?.sid).toMatch(/^RM_[A-Za-z0-9]{12}$/)
    expect(room?.metadata).toBe("m0")
    expect(room?.numParticipants).toBe(2)
    expect(room?.numPublishers).toBe(1)
    expect(Number(room?.creationTime)).toBeGreaterThan(Date.now() / 1000 - 60)
    expect(await client.listRooms(["nowhere"])).toEqual([])

    const participants = await client.listParticipants("lobby")
    expect(participants.map((p) => p.identity).sort()).toEqual(["alice", "bob"])
    const alice = await client.getParticipant("lobby", "alice")
    expect(alice.sid).toMatch(/^PA_/)
    expect(alice.name).toBe("Alice")
    expect(alice.state).toBe(ParticipantInfo_State.ACTIVE)
    expect(alice.isPublisher).toBe(true)
    expect(typeof alice.joinedAt).toBe("bigint")
    expect(Math.abs(Number(alice.joinedAt) - Date.now() / 1000)).toBeLessThan(60)
    const [track] = alice.tracks
    expect(track?.sid).toMatch(/^TR_/)
    expect(track?.type).toBe(TrackType.AUDIO)
    expect(track?.source).toBe(TrackSource.MICROPHONE)
    expect(track?.mimeType).toBe("audio/opus")
    expect(fake.participant("lobby", "alice")?.tracks[0]?.sid).toBe(track?.sid)

    const updated = await client.updateRoomMetadata("lobby", "m1")
    expect(updated.metadata).toBe("m1")
    expect(fake.roomMetadata("lobby")).toBe("m1")
    const bob = await client.updateParticipant("lobby", "bob", { metadata: "b1" })
    expect(bob.metadata).toBe("b1")
    expect(fake.participant("lobby", "bob")?.metadata).toBe("b1")
    expect(fake.calls.get("ListRooms")).toBe(2)
  })

  it("refuses a token signed with another secret (401) and a room admin of another room", async () => {
    const intruder = new RoomServiceClient(fake.url, API_KEY, "not-the-secret", { failover: false })
    const refused = await rejection(intruder.listRooms())
    expect(refused).toBeInstanceOf(ServerError)
    expect(refused).toMatchObject({ status: 401, code: "unauthenticated" })

    const token = new AccessToken(API_KEY, API_SECRET)
    token.addGrant({ roomAdmin: true, room: "elsewhere" })
    const scoped = new RoomServiceClient(fake.url, undefined, undefined, { failover: false, token: await token.toJwt() })
    expect(await rejection(scoped.listParticipants("lobby"))).toMatchObject({ status: 401, message: "permissions denied" })
    expect(await rejection(client.getParticipant("lobby", "nobody"))).toMatchObject({ status: 404, code: "not_found" })
  })

  it("fails the next calls on demand, then answers again; answers late on demand", async () => {
    fake.failNext(2, 500)
    expect(await rejection(client.listRooms())).toMatchObject({ status: 500, code: "internal" })
    fake.failNext(1)
    expect(await rejection(client.listRooms())).toMatchObject({ status: 503, code: "unavailable" })
    expect(await client.listRooms()).toHaveLength(1)

    fake.latencyMs = 100
    const started = performance.now()
    await client.listRooms()
    expect(performance.now() - started).toBeGreaterThanOrEqual(95)
    fake.latencyMs = 0
  })

  it("goes down (connection refused) and comes back on the same port", async () => {
    const port = fake.port
    await fake.down()
    const refused = await rejection(client.listRooms())
    expect(causeCode(refused)).toBe("ECONNREFUSED")
    await fake.up()
    expect(fake.port).toBe(port)
    expect(await client.listRooms()).toHaveLength(1)
  })

  it("signs webhooks as LiveKit does: the SDK's WebhookReceiver accepts them and refuses tampered ones", async () => {
    const signed = await fake.signedWebhook({ event: "participant_joined", room: "lobby", identity: "alice", createdAt: 1_700_000_000 })
    const event = await new WebhookReceiver(API_KEY, API_SECRET).receive(signed.body, signed.authorization)
    expect(event.event).toBe("participant_joined")
    expect(event.id).toBe(signed.id)
    expect(signed.id).toMatch(/^EV_/)
    expect(event.createdAt).toBe(1_700_000_000n)
    expect(event.room?.name).toBe("lobby")
    expect(event.participant?.identity).toBe("alice")
    expect(event.participant?.tracks).toHaveLength(1)

    const receiverOk = new WebhookReceiver(API_KEY, API_SECRET)
    const tampered = signed.body.replace("alice", "mallory")
    await expect(receiverOk.receive(tampered, signed.authorization)).rejects.toThrow(/sha256/)
    const other = new FakeLiveKit({ apiKey: API_KEY, apiSecret: "another-secret" })
    const forged = await other.signedWebhook({ event: "room_started" })
    await expect(receiverOk.receive(forged.body, forged.authorization)).rejects.toThrow()
  })

  it("delivers webhooks to its URLs, on demand and with notify", async () => {
    fake.webhookUrls.push(receiver.url)
    const receive = (d: Delivery | undefined) => new WebhookReceiver(API_KEY, API_SECRET).receive(d?.body ?? "", d?.authorization)

    expect(await fake.sendWebhook({ event: "room_started", room: "lobby" })).toEqual([200])
    expect(receiver.deliveries[0]?.contentType).toBe("application/webhook+json")
    expect((await receive(receiver.deliveries[0])).room?.name).toBe("lobby")

    const trackSid = await fake.publishTrack("lobby", "bob", { kind: "video", notify: true })
    await fake.leave("lobby", "bob", { notify: true })
    const events = await Promise.all(receiver.deliveries.slice(1).map(receive))
    expect(events.map((e) => e.event)).toEqual(["track_published", "track_unpublished", "participant_left"])
    expect(events[0]?.track?.sid).toBe(trackSid)
    expect(events[0]?.track?.type).toBe(TrackType.VIDEO)
    expect(events[2]?.participant?.identity).toBe("bob")
    expect(fake.room("lobby")?.numParticipants).toBe(1)

    // A Twirp call that changes state sends what the real server sends, in the background.
    await client.deleteRoom("lobby")
    await fake.settled()
    const last = await Promise.all(receiver.deliveries.slice(4).map(receive))
    expect(last.map((e) => e.event)).toEqual(["track_unpublished", "participant_left", "room_finished"])
    expect(fake.rooms()).toEqual([])
    expect(fake.webhooksSent).toBe(receiver.deliveries.length)
  })

  it("seeds 100 rooms of 10 participants quickly", async () => {
    const started = performance.now()
    fake.seed(100, 10)
    expect(performance.now() - started).toBeLessThan(500)
    const rooms = await client.listRooms()
    expect(rooms).toHaveLength(100)
    expect(rooms.every((r) => r.numParticipants === 10 && r.numPublishers === 10)).toBe(true)
    const token = new AccessToken(API_KEY, API_SECRET)
    token.addGrant({ roomAdmin: true, room: "room-42" })
    const admin = new RoomServiceClient(fake.url, undefined, undefined, { failover: false, token: await token.toJwt() })
    const participants = await admin.listParticipants("room-42")
    expect(participants.map((p) => p.identity)).toContain("user-42-9")
    expect(participants[0]?.tracks[0]?.type).toBe(TrackType.AUDIO)
  })
})
