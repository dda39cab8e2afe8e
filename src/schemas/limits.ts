import { Schema } from "effect"
import { HttpApiError } from "effect/http-api"

/** A per-client cap was reached (`limit` is the setting's env name, `max` its value); nothing was created. */
export class LimitReached extends HttpApiError.Problem<LimitReached>()("LimitReached", {
  type: "urn:auralink:problem:limit-reached",
  status: 429,
  title: "Limit reached"
}, { detail: Schema.String, limit: Schema.String, max: Schema.Int }) {}

export const limitReached = (limit: string, max: number, what: string) => new LimitReached({ detail: `At most ${max} ${what} (${limit})`, limit, max })
