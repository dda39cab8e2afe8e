import type { types } from "mediasoup"
import { DataProducerId, ProducerId, TransportId } from "../../schemas/ids.ts"

export type TransportKind = "webrtc" | "plain" | "direct"
export type TransportEntry =
  /** `viewer`: a WHEP player's transport (it only consumes; not counted among the client's transports). */
  | { readonly kind: "webrtc"; readonly transport: types.WebRtcTransport; readonly viewer?: boolean }
  | { readonly kind: "plain"; readonly transport: types.PlainTransport }
  | { readonly kind: "direct"; readonly transport: types.DirectTransport }

/** A producer the audio (or video) path can attach to. */
export type ProducerAdded =
  | { readonly kind: "audio"; readonly id: ProducerId; readonly transportId: TransportId }
  | { readonly kind: "video"; readonly id: ProducerId; readonly transportId: TransportId }
  /** With the SCTP label / protocol of the data producer. */
  | { readonly kind: "data"; readonly id: DataProducerId; readonly transportId: TransportId; readonly label?: string; readonly protocol?: string }

const isViewer = (t: TransportEntry) => t.kind === "webrtc" && t.viewer === true

export interface ProducerListener {
  readonly added: (producer: ProducerAdded) => void
  readonly ended: () => void
}

/**
 * Everything one session owns on its router. Objects leave the maps when mediasoup reports them
 * closed (observer `close`), so closing a transport or the router keeps the bookkeeping right.
 */
export class SessionMedia {
  readonly transports = new Map<TransportId, TransportEntry>()
  readonly producers = new Map<string, { readonly producer: types.Producer; readonly transportId: TransportId }>()
  readonly dataProducers = new Map<string, { readonly dataProducer: types.DataProducer; readonly transportId: TransportId }>()
  readonly consumers = new Map<string, types.Consumer>()
  readonly dataConsumers = new Map<string, types.DataConsumer>()
  readonly listeners = new Set<ProducerListener>()
  /** Places held by requests still making a client transport / producer (see MediaServer.reserve). */
  readonly reserved = { transports: 0, producers: 0 }
  /** WHEP viewers' own routers (codecs at each viewer's payload types), fed from this one; closed with it. */
  readonly viewerRouters = new Set<types.Router>()
  /** The producers piped into viewer routers (a viewer's consumers consume these). */
  readonly pipedProducers = new Set<string>()
  /** The server's data producer for the session's events channel (made when a client first opens it). */
  events: types.DataProducer | undefined = undefined

  readonly id: string
  readonly router: types.Router
  readonly workerIndex: number

  // A consumer finished after its router or producer closed may sit under an already closed
  // transport (mediasoup 3.8 then never emitted "close", and whoever read it waited forever; one
  // stuck consumer kept a WAV file open). The add* methods below close such a consumer at once.

  constructor(id: string, router: types.Router, workerIndex: number) {
    this.id = id
    this.router = router
    this.workerIndex = workerIndex
  }

  addTransport(entry: TransportEntry): void {
    // Every kind's observer has "close"; the union of their typed `on`s is not callable as such.
    const t: { readonly id: string; readonly observer: { on: (event: "close", listener: () => void) => unknown } } = entry.transport
    this.transports.set(TransportId.make(t.id), entry)
    t.observer.on("close", () => this.transports.delete(TransportId.make(t.id)))
  }

  /** A viewer router: forgotten when it closes. */
  addViewerRouter(router: types.Router): void {
    this.viewerRouters.add(router)
    router.observer.on("close", () => this.viewerRouters.delete(router))
  }

  /** A producer piped into a viewer router: forgotten when it closes. */
  addPipedProducer(producer: types.Producer): void {
    this.pipedProducers.add(producer.id)
    producer.observer.on("close", () => this.pipedProducers.delete(producer.id))
  }

  addProducer(producer: types.Producer, transportId: TransportId): void {
    this.producers.set(producer.id, { producer, transportId })
    producer.observer.on("close", () => this.producers.delete(producer.id))
    this.announce({ kind: producer.kind, id: ProducerId.make(producer.id), transportId })
  }

  addDataProducer(dataProducer: types.DataProducer, transportId: TransportId): void {
    this.dataProducers.set(dataProducer.id, { dataProducer, transportId })
    dataProducer.observer.on("close", () => this.dataProducers.delete(dataProducer.id))
    this.announce({ kind: "data", id: DataProducerId.make(dataProducer.id), transportId, label: dataProducer.label, protocol: dataProducer.protocol })
  }

  addConsumer(consumer: types.Consumer): void {
    this.consumers.set(consumer.id, consumer)
    consumer.observer.on("close", () => this.consumers.delete(consumer.id))
    if (this.router.closed || !(this.producers.has(consumer.producerId) || this.pipedProducers.has(consumer.producerId))) consumer.close()
  }

  addDataConsumer(dataConsumer: types.DataConsumer): void {
    this.dataConsumers.set(dataConsumer.id, dataConsumer)
    dataConsumer.observer.on("close", () => this.dataConsumers.delete(dataConsumer.id))
    const source = dataConsumer.dataProducerId
    if (this.router.closed || (!this.dataProducers.has(source) && (this.events?.id !== source || this.events.closed))) dataConsumer.close()
  }

  /** The client's transports (WebRTC and plain; the server's DirectTransports and WHEP viewers are not counted) and producers (data ones included). */
  held(what: "transports" | "producers"): number {
    return what === "producers"
      ? this.producers.size + this.dataProducers.size
      : [...this.transports.values()].filter((t) => t.kind !== "direct" && !isViewer(t)).length
  }

  /** Every producer so far, for a listener that joins late. */
  existing(): ReadonlyArray<ProducerAdded> {
    return [
      ...[...this.producers.values()].map(({ producer, transportId }) => ({ kind: producer.kind, id: ProducerId.make(producer.id), transportId })),
      ...[...this.dataProducers.values()].map(({ dataProducer, transportId }) => ({
        kind: "data" as const,
        id: DataProducerId.make(dataProducer.id),
        transportId,
        label: dataProducer.label,
        protocol: dataProducer.protocol
      }))
    ]
  }

  /** Closes the router (and with it every transport, producer and consumer) and ends the listeners. */
  close(): void {
    for (const viewer of this.viewerRouters) viewer.close()
    if (!this.router.closed) this.router.close()
    for (const listener of this.listeners) listener.ended()
    this.listeners.clear()
  }

  private announce(producer: ProducerAdded): void {
    for (const listener of this.listeners) listener.added(producer)
  }
}
