// The IPC messages between bench/audio-ingest and its load generator process (audio-generator.ts).
import { Schema } from "effect"

const Range = Schema.Struct({ sessionId: Schema.String, path: Schema.String, from: Schema.Number, to: Schema.Number })

export const GeneratorRequest = Schema.Union([
  /** Opens sessions on these paths against `base` (with `auth` headers), `concurrency` at a time; they stream until `close`. */
  Schema.Struct({
    type: Schema.Literal("open"),
    id: Schema.Number,
    concurrency: Schema.Number,
    base: Schema.String,
    auth: Schema.Record(Schema.String, Schema.String),
    paths: Schema.Array(Schema.Literals(["rtp", "pcm"]))
  }),
  /** A measured window starts / ends (the reply to "end" carries `window`). */
  Schema.Struct({ type: Schema.Literals(["start", "end"]), id: Schema.Number }),
  /** Closes every session's stream (the generator stays, for the next server). */
  Schema.Struct({ type: Schema.Literal("close"), id: Schema.Number })
])
export type GeneratorRequest = typeof GeneratorRequest.Type

export const GeneratorReply = Schema.Struct({
  id: Schema.Number,
  error: Schema.optionalKey(Schema.String),
  /** In the ready message: the Opus RTP packets captured from ffmpeg. */
  captured: Schema.optionalKey(Schema.Number),
  window: Schema.optionalKey(Schema.Struct({ ranges: Schema.Array(Range), cpuPct: Schema.Number, sendLateP99: Schema.Number }))
})
export type GeneratorReply = typeof GeneratorReply.Type
