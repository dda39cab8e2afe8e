import { type Cause, Duration, Effect, Option, Queue, type Scope, Stream } from "effect"
import type { Redis as IORedis } from "ioredis"
import { createHash } from "node:crypto"
import { makeCircuitBreaker } from "../resilience/circuitBreaker.ts"
import { type Backend, StateStoreError, stampsKey } from "./common.ts"

/** INCRBY that sets the TTL only when it created the key: a fixed window starts at its first hit. */
const INCR = `
local created = redis.call('EXISTS', KEYS[1]) == 0
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if created and ARGV[2] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return value`

/** RPUSH then keep the newest ARGV[2] items, in one step. */
const LIST_PUSH = `
local length = redis.call('RPUSH', KEYS[1], ARGV[1])
local cap = tonumber(ARGV[2])
redis.call('LTRIM', KEYS[1], -cap, -1)
return math.min(length, cap)`

/** hsetIfNewer: KEYS[1] the hash, KEYS[2] its stamps; ARGV field, stamp, "1"/"0" (set/remove), value. */
const SET_IF_NEWER = `
local previous = tonumber(redis.call('HGET', KEYS[2], ARGV[1]))
if previous ~= nil and previous > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[4]) else redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1`

/** Take the lease if free or extend it if ours. */
const HOLD_LEASE = `
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`

const RELEASE_LEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

/**
 * A Lua script sent by its SHA1 (EVALSHA), so its text crosses the wire once per server rather
 * than on every call; a server that does not know it yet (NOSCRIPT, e.g. after a restart) gets EVAL.
 */
const script = (source: string) => {
  const sha = createHash("sha1").update(source).digest("hex")
  return (client: IORedis, keys: string | ReadonlyArray<string>, ...args: Array<string | number>): Promise<unknown> => {
    const all = typeof keys === "string" ? [keys] : keys
    return client.evalsha(sha, all.length, ...all, ...args).catch((error: unknown) =>
      error instanceof Error && error.message.startsWith("NOSCRIPT") ? client.eval(source, all.length, ...all, ...args) : Promise.reject(error)
    )
  }
}
const incrScript = script(INCR)
const listPushScript = script(LIST_PUSH)
const setIfNewerScript = script(SET_IF_NEWER)
const holdLeaseScript = script(HOLD_LEASE)
const releaseLeaseScript = script(RELEASE_LEASE)

const failure = (operation: string) => (cause: unknown) => {
  const detail = cause instanceof Error ? cause.message : String(cause)
  return new StateStoreError({
    operation,
    reason: /WRONGTYPE|not an integer/.test(detail) ? "WrongType" : "Backend",
    detail
  })
}

/** Consecutive command timeouts that open the breaker, and how long it stays open before one probe. */
const BREAKER_TIMEOUTS = 3
const BREAKER_RESET = Duration.seconds(1)

const call = <A>(operation: string, run: () => PromiseLike<A>): Effect.Effect<A, StateStoreError> => Effect.tryPromise({ try: run, catch: failure(operation) })

/** Script replies are untyped: check the shape once here. */
const integerReply = (operation: string) => (reply: unknown): Effect.Effect<number, StateStoreError> =>
  typeof reply === "number" && Number.isSafeInteger(reply)
    ? Effect.succeed(reply)
    : Effect.fail(new StateStoreError({ operation, reason: "Backend", detail: `unexpected reply ${String(reply)}` }))

interface Channel {
  readonly queues: Set<Queue.Queue<string, Cause.Done>>
  /** The SUBSCRIBE every local subscriber of this channel waits for. */
  readonly subscribed: Promise<unknown>
}

/**
 * The Redis backend. Commands go over `client`; pub/sub over `subscriber`, a dedicated
 * connection that holds one Redis subscription per channel however many local streams share it.
 */
export const makeRedisBackend = (client: IORedis, subscriber: IORedis): Effect.Effect<Backend, never, Scope.Scope> =>
  Effect.gen(function*() {
    const channels = new Map<string, Channel>()
    const onMessage = (channel: string, message: string) => channels.get(channel)?.queues.forEach((queue) => Queue.offerUnsafe(queue, message))
    yield* Effect.acquireRelease(
      Effect.sync(() => subscriber.on("message", onMessage)),
      () => Effect.sync(() => subscriber.off("message", onMessage))
    )

    const subscribeNow = (channel: string) => {
      const subscribed = subscriber.subscribe(channel)
      subscribed.catch(() => undefined) // awaited by each subscriber; this only keeps a failure from being "unhandled"
      return subscribed
    }
    // Joining and leaving are synchronous, so SUBSCRIBE/UNSUBSCRIBE reach Redis in the order of the Map's changes.
    const join = (channel: string, queue: Queue.Queue<string, Cause.Done>) =>
      Effect.sync(() => {
        const found = channels.get(channel) ?? { queues: new Set(), subscribed: subscribeNow(channel) }
        found.queues.add(queue)
        channels.set(channel, found)
        return found
      })
    const leave = (channel: string, queue: Queue.Queue<string, Cause.Done>) =>
      Effect.suspend(() => {
        Queue.endUnsafe(queue)
        const found = channels.get(channel)
        if (found === undefined || !found.queues.delete(queue) || found.queues.size > 0) return Effect.void
        channels.delete(channel)
        return call("unsubscribe", () => subscriber.unsubscribe(channel)).pipe(Effect.ignore)
      })

    // Opened by timeouts only (a dropped connection already fails at once): a Redis that hangs
    // costs REDIS_COMMAND_TIMEOUT_MS for a few commands, then nothing until a probe gets through.
    const breaker = yield* makeCircuitBreaker({
      name: "redis",
      failureThreshold: BREAKER_TIMEOUTS,
      resetTimeout: BREAKER_RESET,
      isFailure: (error) => error instanceof StateStoreError && /timed out/i.test(error.detail)
    })
    const guarded = <A>(operation: string, run: () => PromiseLike<A>): Effect.Effect<A, StateStoreError> =>
      breaker.protect(call(operation, run)).pipe(
        Effect.catchTag("CircuitOpen", (open) => Effect.fail(new StateStoreError({ operation, reason: "Backend", detail: open.message })))
      )

    const backend: Backend = {
      get: (key) => guarded("get", () => client.get(key)).pipe(Effect.map(Option.fromNullishOr)),
      set: (key, value, options) =>
        guarded("set", () => options?.ttlMs === undefined ? client.set(key, value) : client.set(key, value, "PX", options.ttlMs)).pipe(
          Effect.asVoid
        ),
      setIfAbsent: (key, value, options) =>
        guarded("setIfAbsent", () => options?.ttlMs === undefined ? client.set(key, value, "NX") : client.set(key, value, "PX", options.ttlMs, "NX")).pipe(
          Effect.map((reply) => reply === "OK")
        ),
      del: (keys) => guarded("del", () => client.del(...keys)),
      expire: (key, ttlMs) => guarded("expire", () => client.pexpire(key, ttlMs)).pipe(Effect.map((n) => n === 1)),
      // PTTL: -2 no key, -1 no expiry.
      ttl: (key) => guarded("ttl", () => client.pttl(key)).pipe(Effect.map((ms) => ms >= 0 ? Option.some(ms) : Option.none())),
      incr: (key, by = 1, options) => guarded("incr", () => incrScript(client, key, by, options?.ttlMs ?? "")).pipe(Effect.flatMap(integerReply("incr"))),
      hget: (key, field) => guarded("hget", () => client.hget(key, field)).pipe(Effect.map(Option.fromNullishOr)),
      hset: (key, fields) => guarded("hset", () => client.hset(key, fields)).pipe(Effect.asVoid),
      hgetAll: (key) => guarded("hgetAll", () => client.hgetall(key)),
      hlen: (key) => guarded("hlen", () => client.hlen(key)),
      hdel: (key, fields) => guarded("hdel", () => client.hdel(key, ...fields)),
      hsetIfNewer: (key, field, value, stamp) =>
        guarded("hsetIfNewer", () => setIfNewerScript(client, [key, stampsKey(key)], field, stamp, value === null ? "0" : "1", value ?? ""))
          .pipe(Effect.flatMap(integerReply("hsetIfNewer")), Effect.map((n) => n === 1)),
      holdLease: (key, holder, ttlMs) =>
        guarded("holdLease", () => holdLeaseScript(client, key, holder, ttlMs)).pipe(Effect.flatMap(integerReply("holdLease")), Effect.map((n) => n === 1)),
      releaseLease: (key, holder) =>
        guarded("releaseLease", () => releaseLeaseScript(client, key, holder)).pipe(Effect.flatMap(integerReply("releaseLease")), Effect.map((n) => n === 1)),
      listPush: (key, value, { cap }) => guarded("listPush", () => listPushScript(client, key, value, cap)).pipe(Effect.flatMap(integerReply("listPush"))),
      listRange: (key, start, stop) => guarded("listRange", () => client.lrange(key, start, stop)),
      // Redis unreachable: this instance's own subscribers still get the message (then the error is
      // raised): a session stopped here during an outage still closes its media here.
      publish: (channel, message) =>
        guarded("publish", () => client.publish(channel, message)).pipe(Effect.tapError(() => Effect.sync(() => onMessage(channel, message)))),
      subscribe: (channel) =>
        Effect.gen(function*() {
          const queue = yield* Queue.unbounded<string, Cause.Done>()
          const found = yield* Effect.acquireRelease(join(channel, queue), () => leave(channel, queue))
          yield* call("subscribe", () => found.subscribed)
          return Stream.fromQueue(queue)
        })
    }
    return backend
  })
