import { Schema } from "effect"
import { HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { Authentication } from "./auth.ts"
import { SessionId } from "./ids.ts"
import { LimitReached } from "./limits.ts"
import { UserRateLimit } from "./rate-limit.ts"
import { ServiceUnavailableResponse } from "./unavailable.ts"
import { ShareGrant, ShareRequest } from "./whip.ts"
import {
  AppendContext,
  IllegalTransition,
  InvalidCursor,
  ListQuery,
  Session,
  SessionClosed,
  SessionConfigPatch,
  SessionForbidden,
  SessionNotFound,
  SessionPage
} from "./session.ts"

const byId = { id: SessionId }

/** Ingest sessions of the bearer's user (operators may read and list all). */
export class SessionsApi extends HttpApiGroup.make("sessions")
  .add(
    HttpApiEndpoint.post("start", "/api/session", {
      // An empty body (null) starts a session with the default config.
      payload: [SessionConfigPatch, Schema.Null],
      success: Session.pipe(HttpApiSchema.status(201)),
      error: LimitReached
    }),
    HttpApiEndpoint.post("stop", "/api/session/:id/stop", {
      params: byId,
      success: Session,
      error: [SessionNotFound, SessionForbidden, IllegalTransition]
    }),
    HttpApiEndpoint.get("get", "/api/session/:id", {
      params: byId,
      success: Session,
      error: [SessionNotFound, SessionForbidden]
    }),
    HttpApiEndpoint.patch("updateConfig", "/api/session/:id/config", {
      params: byId,
      payload: SessionConfigPatch,
      success: Session,
      error: [SessionNotFound, SessionForbidden, SessionClosed]
    }),
    HttpApiEndpoint.post("appendContext", "/api/session/:id/context", {
      params: byId,
      payload: AppendContext,
      success: Session,
      error: [SessionNotFound, SessionForbidden, SessionClosed]
    }),
    HttpApiEndpoint.post("share", "/api/session/:id/share", {
      params: byId,
      // An empty body (null): the longest life WHEP_SHARE_TOKEN_TTL_SECONDS allows.
      payload: [ShareRequest, Schema.Null],
      success: ShareGrant.pipe(HttpApiSchema.status(201)),
      error: [SessionNotFound, SessionForbidden, SessionClosed, ServiceUnavailableResponse]
    }),
    HttpApiEndpoint.get("list", "/api/sessions", {
      query: ListQuery,
      success: SessionPage,
      error: [InvalidCursor, SessionForbidden]
    })
  )
  .middleware(UserRateLimit)
  .middleware(Authentication)
  .annotateMerge(OpenApi.annotations({ title: "Sessions", description: "Start, stop, read and list ingest sessions; config and context; WHEP share tokens" }))
{}
