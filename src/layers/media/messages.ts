import type { types } from "mediasoup"

/** Where a source's messages go: each one, and its end. */
export interface MessageHandlers {
  readonly push: (message: Uint8Array) => void
  readonly end: () => void
}

/**
 * Subscribes to the `rtp` events of a mediasoup consumer or the `message` events of a data
 * consumer until it closes (at once if it already has); returns the function that stops it. The
 * shape of the audio and AIC pipelines' sources.
 */
export const consumerMessages = (emitter: types.Consumer | types.DataConsumer, event: "rtp" | "message") => (handlers: MessageHandlers): () => void => {
  const onMessage = (message: Buffer) => handlers.push(message)
  emitter.on(event, onMessage)
  emitter.observer.once("close", handlers.end)
  if (emitter.closed) handlers.end()
  return () => {
    emitter.off(event, onMessage)
    emitter.observer.off("close", handlers.end)
  }
}
