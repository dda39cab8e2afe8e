import type { types } from "mediasoup"

/** Where a source's messages go: each one, and its end. */
export interface MessageHandlers {
  readonly push: (message: Uint8Array) => void
  readonly end: () => void
}

/** What the audio and AIC sources need of a mediasoup consumer (`rtp`) or data consumer (`message`). */
interface MessageEmitter<E extends string> {
  readonly closed: boolean
  readonly on: (event: E, listener: (message: Buffer) => void) => unknown
  readonly off: (event: E, listener: (message: Buffer) => void) => unknown
  readonly observer: {
    readonly once: (event: "close", listener: () => void) => unknown
    readonly off: (event: "close", listener: () => void) => unknown
  }
}

/**
 * Subscribes to the `event` messages of an emitter until it closes (at once if it already has);
 * returns the function that stops it. The shape of the audio and AIC pipelines' sources.
 */
const messagesOf = <E extends string>(emitter: MessageEmitter<E>, event: E) => (handlers: MessageHandlers): () => void => {
  const onMessage = (message: Buffer) => handlers.push(message)
  emitter.on(event, onMessage)
  emitter.observer.once("close", handlers.end)
  if (emitter.closed) handlers.end()
  return () => {
    emitter.off(event, onMessage)
    emitter.observer.off("close", handlers.end)
  }
}

/** The RTP packets of a mediasoup consumer. */
export const consumerRtp = (consumer: types.Consumer) => messagesOf(consumer, "rtp")

/** The messages of a mediasoup data consumer. */
export const dataConsumerMessages = (dataConsumer: types.DataConsumer) => messagesOf(dataConsumer, "message")
