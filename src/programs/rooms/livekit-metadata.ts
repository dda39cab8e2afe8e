import { Option } from "effect"
import type { MediaState } from "../../schemas/rooms.ts"

/** The one key of a LiveKit room's metadata this service writes. */
export const MEDIA_STATE_KEY = "auralink"
/** Where metadata that was not a JSON object is kept, verbatim, once this service writes its key beside it. */
export const FOREIGN_METADATA_KEY = "metadata"

const isObject = (value: unknown): value is Readonly<Record<string, unknown>> => typeof value === "object" && value !== null && !Array.isArray(value)

/** The room's metadata as an object: empty is `{}`; text that is not a JSON object (plain text, an array, a number) is kept whole under `metadata`. */
const asObject = (metadata: string): Readonly<Record<string, unknown>> => {
  if (metadata.trim() === "") return {}
  try {
    const parsed: unknown = JSON.parse(metadata)
    if (isObject(parsed)) return parsed
  } catch {
    // Not JSON: kept below like any other non-object.
  }
  // Wrapped rather than replaced or left alone: every byte the room had stays readable, and the media state is still published.
  return { [FOREIGN_METADATA_KEY]: metadata }
}

/**
 * `metadata` with `auralink` set to `state` (taken out when None), every other key kept. None when
 * nothing would change (no state to remove, or metadata without the key stays as it is).
 */
export const withMediaState = (metadata: string, state: Option.Option<MediaState>): Option.Option<string> => {
  const current = asObject(metadata)
  if (Option.isNone(state)) {
    if (!(MEDIA_STATE_KEY in current)) return Option.none()
    const { [MEDIA_STATE_KEY]: _, ...rest } = current
    return Option.some(Object.keys(rest).length === 0 ? "" : JSON.stringify(rest))
  }
  return Option.some(JSON.stringify({ ...current, [MEDIA_STATE_KEY]: state.value }))
}

/** The part of a combined state that decides whether LiveKit needs a write: all of it but the time it was computed. */
export const publishedValue = (state: Option.Option<MediaState>): string =>
  Option.match(state, { onNone: () => "none", onSome: ({ updatedAt: _, ...rest }) => JSON.stringify(rest) })
