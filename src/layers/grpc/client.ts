import * as grpc from "@grpc/grpc-js"

/**
 * A configured gRPC address (ASR_GATEWAY_URL, AI_CORE_GRPC_URL) as a grpc-js target: `host:port`,
 * `dns:///host:port`, `grpc://host:port` / `http://host:port` (plaintext) or `grpcs://` / `https://` (TLS).
 */
export const parseTarget = (url: string): { readonly target: string; readonly tls: boolean } => {
  const match = /^(grpcs?|https?):\/\/(.+?)\/?$/.exec(url)
  if (match === null) return { target: url, tls: false }
  return { target: match[2] ?? url, tls: match[1] === "grpcs" || match[1] === "https" }
}

/**
 * A grpc-js client of an external service whose own reconnect backoff follows ours (so a service
 * that is back is found quickly). `ownConnection`: it does not share grpc-js's process-wide
 * subchannel pool, so it has an HTTP/2 connection of its own (for a pool of connections).
 */
export const makeClient = (url: string, backoff: { readonly baseMs: number; readonly maxMs: number }, ownConnection = false) => {
  const { target, tls } = parseTarget(url)
  return new grpc.Client(target, tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure(), {
    ...(ownConnection ? { "grpc.use_local_subchannel_pool": 1 } : {}),
    "grpc.initial_reconnect_backoff_ms": backoff.baseMs,
    "grpc.max_reconnect_backoff_ms": backoff.maxMs,
    // No grpc-js retry buffering: a write then completes only when HTTP/2 flow control takes it,
    // which is what carries the peer's pace back to the caller (the clients replay or fall back themselves).
    "grpc.enable_retries": 0,
    "grpc.per_rpc_retry_buffer_size": 0,
    "grpc.keepalive_time_ms": 10_000,
    "grpc.keepalive_timeout_ms": 5_000
  })
}
