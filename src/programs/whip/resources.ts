import { Context, Effect, Layer } from "effect"
import type { Scope } from "effect"
import type { types } from "mediasoup"
import { randomUUID } from "node:crypto"
import { Gauge } from "prom-client"
import { Metrics } from "../../layers/Metrics.ts"
import { Health } from "../../layers/Health.ts"
import { MediaServer, type WebRtcEndpoint } from "../../layers/MediaServer.ts"
import type { AnsweredMedia } from "../../media/sdp/answer.ts"
import type { Offer } from "../../media/sdp/offer.ts"
import type { SessionId, TransportId } from "../../schemas/ids.ts"

/** A WHIP publisher's or WHEP viewer's resource: one WebRTC transport of a session on this instance. */
export interface WebRtcResource {
  readonly kind: "whip" | "whep"
  readonly id: TransportId
  readonly sessionId: SessionId
  /** Who made it, and so who may PATCH or DELETE it: `user:<id>` (an access token) or `share:<id>` (a WHEP share token). */
  readonly holder: string
  /** The answered (bundled) mids, the first of which carries an ICE restart's candidates. */
  readonly mids: ReadonlyArray<string>
  /** The client's current ICE username fragment: a PATCH with another one is an ICE restart. */
  clientUfrag: string
  /** The server's candidates (they survive an ICE restart), sent again with the new credentials. */
  readonly candidates: ReadonlyArray<types.IceCandidate>
  /** The entity tag of its ICE session (RFC 9725 §4.3.1): a new one after each ICE restart. */
  etag: string
  readonly createdAt: number
}

/** The holder of a resource made with an access token. */
export const userHolder = (principal: { readonly userId: string }) => `user:${principal.userId}`

export const newEtag = () => `"${randomUUID()}"`

/** A new resource for `endpoint` (the transport answering `offer` with `answers`), with a fresh ETag. */
export const newResource = (
  kind: WebRtcResource["kind"],
  sessionId: SessionId,
  holder: string,
  endpoint: WebRtcEndpoint,
  offer: Offer,
  answers: ReadonlyArray<AnsweredMedia>
): WebRtcResource => ({
  kind,
  id: endpoint.id,
  sessionId,
  holder,
  mids: offer.media.filter((_, i) => answers[i]?.accept === true).map((m) => m.mid),
  clientUfrag: offer.ice.ufrag,
  candidates: endpoint.iceCandidates,
  etag: newEtag(),
  createdAt: Date.now()
})

/** The path a resource is found at (its `Location`). */
export const resourcePath = (r: { readonly kind: "whip" | "whep"; readonly sessionId: string; readonly id: string }) =>
  `/${r.kind}/sessions/${r.sessionId}/${r.id}`

/**
 * The WHIP and WHEP resources this instance holds, by transport id. Media lives in one instance's
 * memory (its router), so this does too; a resource goes when its transport or session closes.
 */
export class WebRtcResources extends Context.Service<WebRtcResources, {
  readonly add: (resource: WebRtcResource) => void
  readonly get: (id: string) => WebRtcResource | undefined
  readonly remove: (id: string) => void
  readonly ofSession: (sessionId: string) => ReadonlyArray<WebRtcResource>
  /**
   * Holds a place among the session's WHEP viewers until the scope closes; false when `max` are
   * already there or being made (so concurrent offers cannot overshoot the cap).
   */
  readonly holdViewerPlace: (sessionId: string, max: number) => Effect.Effect<boolean, never, Scope.Scope>
  /** Runs `watch` (a resource's media watchdog) for as long as the layer, not the request that made it. */
  readonly background: <R>(watch: Effect.Effect<void, never, R>) => Effect.Effect<void, never, R>
}>()("auralink/whip/WebRtcResources") {
  static readonly layer = Layer.effect(
    WebRtcResources,
    Effect.gen(function*() {
      const byId = new Map<string, WebRtcResource>()
      /** WHEP viewers being made, by session (see holdViewerPlace). */
      const pending = new Map<string, number>()
      const scope = yield* Effect.scope
      const { registry } = yield* Metrics
      const media = yield* MediaServer
      // A publisher's resource lives as long as its session's media here (a DELETE right after the client
      // closed its connection still ends the session as completed); a viewer's, as long as its transport.
      const open = (r: WebRtcResource) => r.kind === "whip" ? media.hasMedia(r.sessionId) : media.transportOpen(r.sessionId, r.id)
      /** The resources still open (the others are forgotten). */
      const live = () => {
        for (const r of byId.values()) if (!open(r)) byId.delete(r.id)
        return [...byId.values()]
      }
      const count = (kind: WebRtcResource["kind"]) => live().filter((r) => r.kind === kind).length
      new Gauge({
        name: "auralink_whip_resources",
        help: "WHIP publishers and WHEP viewers held by this instance",
        labelNames: ["kind"] as const,
        registers: [registry],
        collect() {
          this.set({ kind: "whip" }, count("whip"))
          this.set({ kind: "whep" }, count("whep"))
        }
      })
      yield* (yield* Health).section("whip", Effect.sync(() => ({ publishers: count("whip"), viewers: count("whep") })))
      return WebRtcResources.of({
        add: (resource) => void byId.set(resource.id, resource),
        get: (id) => live().find((r) => r.id === id),
        remove: (id) => void byId.delete(id),
        ofSession: (sessionId) => live().filter((r) => r.sessionId === sessionId),
        holdViewerPlace: (sessionId, max) =>
          Effect.suspend(() => {
            const held = pending.get(sessionId) ?? 0
            const viewers = live().filter((r) => r.sessionId === sessionId && r.kind === "whep").length
            if (viewers + held >= max) return Effect.succeed(false)
            pending.set(sessionId, held + 1)
            return Effect.as(
              Effect.addFinalizer(() =>
                Effect.sync(() => {
                  const left = (pending.get(sessionId) ?? 1) - 1
                  if (left > 0) pending.set(sessionId, left)
                  else pending.delete(sessionId)
                })
              ),
              true
            )
          }),
        background: (watch) => Effect.asVoid(Effect.forkIn(watch, scope))
      })
    })
  )
}
