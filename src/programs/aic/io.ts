import { Effect, type Scope } from "effect"
import { createSocket, type Socket } from "node:dgram"
import type { types } from "mediasoup"
import { consumerRtp, type MessageHandlers } from "../../layers/media/messages.ts"

/** Where a pipeline's packets come from: a mediasoup consumer's `rtp` events, a UDP socket, a test. */
export interface RtpSource {
  /**
   * Starts handing packets to `push` and the end to `end` (what was pushed is still processed, then
   * the pipeline's output ends), synchronously from any callback; returns the function that stops
   * it (called when the pipeline's scope closes).
   */
  readonly subscribe: (handlers: MessageHandlers) => () => void
}

/** Where processed packets go, in order. `send` is synchronous and must not throw. */
export interface RtpSink {
  readonly send: (packets: ReadonlyArray<Uint8Array>) => void
}

/** A mediasoup DirectTransport consumer: its `rtp` events until it closes. */
export const consumerSource = (consumer: types.Consumer): RtpSource => ({ subscribe: consumerRtp(consumer) })

/** Datagrams arriving on a bound UDP socket; ends when the socket closes. */
export const udpSource = (socket: Socket): RtpSource => ({
  subscribe: (handlers) => {
    const onMessage = (packet: Buffer) => handlers.push(packet)
    socket.on("message", onMessage)
    socket.once("close", handlers.end)
    return () => {
      socket.off("message", onMessage)
      socket.off("close", handlers.end)
    }
  }
})

/**
 * RTP over UDP to `host:port` from `socket`. A send error (e.g. ICMP port unreachable reported on
 * a later send) is counted, not thrown: the media path does not stop for a receiver that is away.
 */
export const udpSink = (socket: Socket, host: string, port: number): RtpSink & { readonly errors: () => number } => {
  let errors = 0
  const onSent = (error: Error | null) => {
    if (error !== null) errors++
  }
  return {
    send: (packets) => {
      for (const packet of packets) socket.send(packet, port, host, onSent)
    },
    errors: () => errors
  }
}

/** A UDP sink on a socket of its own (IPv4 or IPv6 as `host` needs), closed with the scope. */
export const openUdpSink = (host: string, port: number): Effect.Effect<RtpSink & { readonly errors: () => number }, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => createSocket({ type: host.includes(":") ? "udp6" : "udp4", sendBufferSize: 4 * 1024 * 1024 })),
      (socket) => Effect.sync(() => socket.close())
    ),
    (socket) => {
      // Send errors go to the sink's counter; without a listener a socket error would be thrown.
      socket.on("error", () => undefined)
      return udpSink(socket, host, port)
    }
  )

/** Into a mediasoup DirectTransport producer (`producer.send`). Note: mediasoup strips the AIC element. */
export const producerSink = (producer: types.Producer): RtpSink => ({
  send: (packets) => {
    for (const packet of packets) {
      if (!producer.closed) producer.send(Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength))
    }
  }
})
