import { Effect } from "effect"
import type { types } from "mediasoup"
import { MediaServer } from "../../layers/MediaServer.ts"
import type { Principal } from "../../schemas/auth.ts"
import type { Session } from "../../schemas/session.ts"
import { MediaRejected, type Produce, type ProduceData } from "../../schemas/webrtc.ts"
import { AicIngest } from "../aic/ingest.ts"
import { AudioIngest } from "../audio/ingest.ts"
import { activateSession } from "../sessions/activate.ts"
import { openSession } from "./access.ts"
import { withinProducerCap } from "./limits.ts"
import { DataProducerId, ProducerId, type SessionId, type TransportId } from "../../schemas/ids.ts"

/** Media now flows: a pending session becomes active (a concurrent stop or expiry wins; that is not an error here). */
const activate = (session: Session) =>
  session.state === "pending"
    ? activateSession(session.id, "media", "producer created").pipe(Effect.catchTag("IllegalTransition", () => Effect.void), Effect.asVoid)
    : Effect.void

/** A request that fails after its producer was made (e.g. the store is down) closes it again: no 500 leaves a live producer. */
const undoOnFailure = (made: { readonly close: () => void }) => <A, E, R>(rest: Effect.Effect<A, E, R>) =>
  Effect.onError(rest, () => Effect.sync(() => made.close()))

/** A codec of another kind than the producer's (mediasoup, 3.27 included, takes `video` with `audio/opus`). */
const kindMismatch = (request: Produce): MediaRejected | undefined => {
  const index = request.rtpParameters.codecs.findIndex((c) => !c.mimeType.toLowerCase().startsWith(`${request.kind}/`))
  const codec = request.rtpParameters.codecs[index]
  return codec === undefined
    ? undefined
    : new MediaRejected({ detail: `rtpParameters.codecs[${index}].mimeType: ${codec.mimeType} does not match kind ${request.kind}` })
}

/**
 * An audio or video producer of an open session on one of its transports (JSON signaling or a
 * WHIP offer): within MAX_PRODUCERS_PER_SESSION; the session turns active; audio goes to the
 * audio path and video to the AIC pipeline (each ignores the other kind).
 */
export const makeProducer = Effect.fn("signaling.makeProducer")(function*(session: Session, transportId: TransportId, options: types.ProducerOptions) {
  const id = session.id
  const producer = yield* withinProducerCap(id, (yield* MediaServer).produce(id, transportId, options))
  yield* Effect.gen(function*() {
    yield* activate(session)
    const added = { kind: options.kind, id: ProducerId.make(producer.id), transportId }
    yield* (yield* AudioIngest).attach(id, added)
    yield* (yield* AicIngest).attach(id, added)
  }).pipe(undoOnFailure(producer))
  return producer
})

/** An audio or video producer on a WebRTC or plain transport of the session. */
export const produce = Effect.fn("signaling.produce")(function*(principal: Principal, id: SessionId, transportId: TransportId, request: Produce) {
  const session = yield* openSession(principal, id)
  const mismatch = kindMismatch(request)
  if (mismatch !== undefined) return yield* mismatch
  const producer = yield* makeProducer(session, transportId, {
    kind: request.kind,
    rtpParameters: request.rtpParameters,
    ...(request.appData === undefined ? {} : { appData: { ...request.appData } })
  })
  return { producerId: producer.id }
})

/** A data producer (SCTP) on a WebRTC transport of the session. */
export const produceData = Effect.fn("signaling.produceData")(function*(principal: Principal, id: SessionId, transportId: TransportId, request: ProduceData) {
  const session = yield* openSession(principal, id)
  const dataProducer = yield* withinProducerCap(
    id,
    (yield* MediaServer).produceData(id, transportId, {
      sctpStreamParameters: request.sctpStreamParameters,
      ...(request.label === undefined ? {} : { label: request.label }),
      ...(request.protocol === undefined ? {} : { protocol: request.protocol }),
      ...(request.appData === undefined ? {} : { appData: { ...request.appData } })
    })
  )
  yield* Effect.gen(function*() {
    yield* activate(session)
    yield* (yield* AudioIngest).attach(id, {
      kind: "data",
      id: DataProducerId.make(dataProducer.id),
      transportId,
      ...(request.label === undefined ? {} : { label: request.label })
    })
  }).pipe(undoOnFailure(dataProducer))
  return { dataProducerId: dataProducer.id }
})
