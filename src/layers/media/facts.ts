import type { TransportId } from "../../schemas/ids.ts"

/**
 * What MediaServer saw happen to session media, published for programs to act on: it states
 * these facts and decides nothing about the sessions (the media lifecycle program does).
 */
export type MediaFact =
  /** A router was made for the session on worker `worker`: the session has media on this instance. */
  | { readonly _tag: "MediaOpened"; readonly sessionId: string; readonly worker: number }
  /**
   * The client of WebRTC transport `transportId` is gone: ICE consent expired (no STUN from it for
   * MEDIASOUP_ICE_CONSENT_TIMEOUT_SECONDS) or its TCP connection closed.
   */
  | { readonly _tag: "IceLost"; readonly sessionId: string; readonly transportId: TransportId }
  /** The DTLS association of WebRTC transport `transportId` failed or was closed by the client (a close alert). */
  | { readonly _tag: "DtlsEnded"; readonly sessionId: string; readonly transportId: TransportId; readonly state: "failed" | "closed" }
  /** Worker `worker` died and was replaced; the media of `sessions` went with it (already forgotten here). */
  | { readonly _tag: "WorkerDied"; readonly worker: number; readonly pid: number; readonly error: string; readonly sessions: ReadonlyArray<string> }
