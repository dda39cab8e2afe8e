/**
 * What MediaServer saw happen to session media, published for programs to act on: it states
 * these facts and decides nothing about the sessions (the media lifecycle program does).
 */
export type MediaFact =
  /** A router was made for the session on worker `worker`: the session has media on this instance. */
  | { readonly _tag: "MediaOpened"; readonly sessionId: string; readonly worker: number }
  /** Worker `worker` died and was replaced; the media of `sessions` went with it (already forgotten here). */
  | { readonly _tag: "WorkerDied"; readonly worker: number; readonly pid: number; readonly error: string; readonly sessions: ReadonlyArray<string> }
