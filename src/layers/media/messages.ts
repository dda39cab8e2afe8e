import type { types } from "mediasoup"

/** Where a source's messages go: each one, and its end. */
export interface MessageHandlers {
  readonly push: (message: Uint8Array) => void
  readonly end: () => void
}

/** Listens (returns how to stop); `onClose` watches for the end (returns how to stop watching). */
const subscription = (
  listen: (push: (message: Buffer) => void) => () => void,
  onClose: (end: () => void) => () => void,
  isClosed: () => boolean
) =>
(handlers: MessageHandlers): () => void => {
  const stopListening = listen((message) => handlers.push(message))
  const stopWatching = onClose(handlers.end)
  if (isClosed()) handlers.end()
  return () => {
    stopListening()
    stopWatching()
  }
}

/**
 * Subscribes to the `rtp` events of a mediasoup consumer until it closes (at once if it already
 * has); returns the function that stops it. The shape of the audio and AIC pipelines' sources.
 */
export const consumerRtp = (consumer: types.Consumer) =>
  subscription(
    (push) => (consumer.on("rtp", push), () => consumer.off("rtp", push)),
    (end) => (consumer.observer.once("close", end), () => consumer.observer.off("close", end)),
    () => consumer.closed
  )

/** The same for the `message` events of a data consumer. */
export const dataConsumerMessages = (dataConsumer: types.DataConsumer) =>
  subscription(
    (push) => (dataConsumer.on("message", push), () => dataConsumer.off("message", push)),
    (end) => (dataConsumer.observer.once("close", end), () => dataConsumer.observer.off("close", end)),
    () => dataConsumer.closed
  )
