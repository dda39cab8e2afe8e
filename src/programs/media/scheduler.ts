import { Scheduler } from "effect"

/**
 * The scheduler of the media pipelines' fibers (audio ingest and its sink, AIC): they hand over
 * on the microtask queue, not one event-loop turn per hop (the default), so a packet's hops
 * (source queue, sink, gRPC write) cost no I/O turns, each of which costs milliseconds on a busy
 * loop. Every such fiber waits on input or on its peer between bursts, so the loop is not starved.
 */
export const handOverAtOnce = new Scheduler.MixedScheduler("sync")
