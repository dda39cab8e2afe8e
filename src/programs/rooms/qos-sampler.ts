import { Effect } from "effect"
import type { SessionId } from "../../schemas/ids.ts"
import { recordMeasuredQos } from "../participants/record-measured-qos.ts"
import type { CarriedSession } from "./carried-sessions.ts"
import { intervalFigures, type StreamCounters } from "./media-figures.ts"

/**
 * One measured QoS sample per interval for each carried session that names its participant
 * (`config.participantIdentity`) and has live streams: loss from the packet counters' change since
 * the previous interval (kept here per session), jitter, RTT and bandwidth as mediasoup reads them.
 * A sample that cannot be stored is logged; the others are still recorded.
 */
export const makeQosSampler = () => {
  const counters = new Map<SessionId, StreamCounters>()
  return (carried: ReadonlyArray<CarriedSession>) =>
    Effect.gen(function*() {
      const open = new Set(carried.map((c) => c.session.id))
      for (const id of counters.keys()) if (!open.has(id)) counters.delete(id)
      yield* Effect.forEach(carried, ({ session, stats }) => {
        const identity = session.config.participantIdentity
        if (identity === undefined) return Effect.void
        const measured = intervalFigures(stats, counters.get(session.id) ?? new Map())
        counters.set(session.id, measured.counters)
        if (measured.figures === undefined) return Effect.void
        return recordMeasuredQos({ identity, sessionId: session.id, ...measured.figures }).pipe(
          Effect.catchCause((cause) => Effect.logWarning(`measured QoS of participant ${JSON.stringify(identity)} not stored`, cause)),
          Effect.annotateLogs({ sessionId: session.id })
        )
      }, { concurrency: 16, discard: true })
    })
}
