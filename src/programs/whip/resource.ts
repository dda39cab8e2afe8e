import { Effect } from "effect"
import { restartFragment, parseFragment } from "../../media/sdp/trickle.ts"
import { MediaServer } from "../../layers/MediaServer.ts"
import type { SessionId } from "../../schemas/ids.ts"
import { applyTransition } from "../sessions/transition.ts"
import { BadFragment, EtagMismatch, ResourceNotFound } from "../../schemas/whip.ts"
import { sessionForbidden } from "../../schemas/session.ts"
import { newEtag, type WebRtcResource, WebRtcResources } from "./resources.ts"

/** Who calls: the holder id of its bearer (`user:…` or `share:…`), and whether it is an operator (who may end any resource). */
export interface ResourceCaller {
  readonly holder: string
  readonly operator: boolean
}

/** The resource at `/<kind>/sessions/<sessionId>/<id>`, if the caller made it (403 otherwise, 404 when there is none). */
const held = Effect.fn("whip.resource")(function*(caller: ResourceCaller, kind: WebRtcResource["kind"], sessionId: SessionId, id: string) {
  const resource = (yield* WebRtcResources).get(id)
  if (resource === undefined || resource.kind !== kind || resource.sessionId !== sessionId) {
    return yield* new ResourceNotFound({ detail: `No ${kind.toUpperCase()} resource ${id} of session ${sessionId} on this instance` })
  }
  if (resource.holder !== caller.holder && !caller.operator) return yield* sessionForbidden()
  return resource
})

/** RFC 9110 §13.1.1: `*` matches any current resource; otherwise one of the listed tags must be the current one. */
const matches = (ifMatch: string, etag: string) => ifMatch.trim() === "*" || ifMatch.split(",").map((t) => t.trim().replace(/^W\//, "")).includes(etag)

export type PatchOutcome =
  | { readonly _tag: "Trickled" }
  | { readonly _tag: "Restarted"; readonly etag: string; readonly fragment: string }

/**
 * A trickle ICE PATCH (RFC 9725 §4.4): candidates are taken (204; mediasoup is ICE-lite and
 * answers the client's checks wherever they come from, so nothing needs to be stored), and new ICE
 * credentials are an ICE restart: the transport's ICE restarts and its new credentials, with a new
 * ETag, are the answer (200). `If-Match` that names another ETag is 412.
 */
export const patchResource = Effect.fn("whip.patch")(
  function*(caller: ResourceCaller, kind: WebRtcResource["kind"], sessionId: SessionId, id: string, body: string, ifMatch: string | undefined) {
    const resource = yield* held(caller, kind, sessionId, id)
    if (ifMatch !== undefined && !matches(ifMatch, resource.etag)) {
      return yield* new EtagMismatch({ detail: `If-Match ${ifMatch} is not the resource's current ETag` })
    }
    const fragment = parseFragment(body)
    if (fragment === undefined) return yield* new BadFragment({ detail: "the body is not a trickle ICE SDP fragment (RFC 8840): only a=, m= and c= lines" })
    const restart = fragment.ufrag !== undefined && fragment.ufrag !== resource.clientUfrag
    if (!restart) return { _tag: "Trickled" } satisfies PatchOutcome
    if (fragment.pwd === undefined) return yield* new BadFragment({ detail: "an ICE restart (a new a=ice-ufrag) needs its a=ice-pwd" })
    const ice = yield* (yield* MediaServer).restartIce(sessionId, resource.id)
    resource.clientUfrag = fragment.ufrag
    resource.etag = newEtag()
    yield* Effect.logInfo("ICE restart").pipe(Effect.annotateLogs({ event: `${kind}_ice_restart`, sessionId, transportId: resource.id }))
    return { _tag: "Restarted", etag: resource.etag, fragment: restartFragment(resource.mids, ice, resource.candidates) } satisfies PatchOutcome
  }
)

/** DELETE: a WHIP resource ends its session (completed); a WHEP resource ends only its viewer. */
export const deleteResource = Effect.fn("whip.delete")(function*(caller: ResourceCaller, kind: WebRtcResource["kind"], sessionId: SessionId, id: string) {
  const resource = yield* held(caller, kind, sessionId, id)
  const resources = yield* WebRtcResources
  yield* Effect.ignore((yield* MediaServer).closeTransport(sessionId, resource.id))
  resources.remove(resource.id)
  if (kind === "whip") {
    yield* applyTransition(sessionId, "completed", { actor: caller.holder, reason: "WHIP resource deleted", pendingReason: "WHIP resource deleted" }).pipe(
      Effect.catchTag("IllegalTransition", () => Effect.void)
    )
  }
  yield* Effect.logInfo(`${kind.toUpperCase()} resource deleted`).pipe(Effect.annotateLogs({ event: `${kind}_deleted`, sessionId, transportId: resource.id }))
})
