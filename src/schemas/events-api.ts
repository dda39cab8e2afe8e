import { Schema } from "effect"
import { Transcript } from "./asr.ts"
import { SessionState } from "./session.ts"

/** The data of `event: state`. */
export const StateEvent = Schema.Struct({ state: SessionState })

const problem = (description: string) => ({ description, content: { "application/problem+json": { schema: { type: "object" } } } })

/**
 * The session events stream (server-sent events). It is served beside the HttpApi (EventSource
 * cannot send headers, so the token may come in the query), so its entry in /openapi.json is
 * written here and merged into the generated document.
 */
const sessionEventsOperation = {
  tags: ["WebRTC signaling"],
  operationId: "webrtc.events",
  summary: "Session events (server-sent events)",
  description: [
    "A `text/event-stream` of the caller's own session:",
    "`event: state` (data: `{\"state\": ...}`) first with the current state, then on every change;",
    "`event: transcript` (data: a transcript from the ASR gateway) as they come.",
    "The stream ends after the session's terminal state (completed, error, expired).",
    "A session that has already ended answers 204 No Content, so a browser's EventSource stops reconnecting.",
    "The token is the Authorization bearer or the `access_token` query parameter (RFC 6750 §2.3).",
    "Each connect counts against the user's request budget; requests with bad tokens count against the client IP's;",
    "open streams are capped per session (MAX_SSE_STREAMS_PER_SESSION) and per user (MAX_SSE_STREAMS_PER_USER)."
  ].join(" "),
  security: [{ bearer: [] }, {}],
  parameters: [
    { name: "sessionId", in: "path", required: true, schema: { type: "string" } },
    {
      name: "access_token",
      in: "query",
      required: false,
      description: "The access token, for clients that cannot set headers (EventSource)",
      schema: { type: "string" }
    }
  ],
  responses: {
    "200": {
      description: "The event stream. Event types: `state` (data: StateEvent), `transcript` (data: Transcript).",
      content: {
        "text/event-stream": {
          schema: { type: "string", description: "`event: <type>\\ndata: <JSON>\\n\\n` per event" },
          "x-events": {
            state: Schema.toJsonSchemaDocument(StateEvent).schema,
            transcript: Schema.toJsonSchemaDocument(Transcript).schema
          }
        }
      }
    },
    "204": { description: "The session has already ended: nothing to stream (EventSource does not reconnect)" },
    "401": problem("Missing, invalid or revoked access token"),
    "403": problem("The session belongs to another user"),
    "404": problem("No such session"),
    "429": problem("Rate limit (with Retry-After) or stream cap (`limit` names the setting) reached")
  }
}

/** Adds the events stream to a generated OpenAPI document (an `OpenApi.annotations` transform). */
export const withSessionEvents = (spec: Record<string, unknown>): Record<string, unknown> => {
  const paths = spec["paths"]
  return {
    ...spec,
    paths: { ...(typeof paths === "object" && paths !== null ? paths : {}), "/api/webrtc/{sessionId}/events": { get: sessionEventsOperation } }
  }
}
