// Wire pieces of the fake LiveKit server: Twirp errors, protojson request fields, ids, webhook signing and delivery.
import { createHash, randomBytes } from "node:crypto"
import * as http from "node:http"
import { AccessToken } from "livekit-server-sdk"

/** A Twirp error as the real server writes it: `{ code, msg }` with the code's HTTP status. */
export class TwirpFailure extends Error {
  readonly code: string
  readonly status: number
  constructor(code: string, status: number, message: string) {
    super(message)
    this.code = code
    this.status = status
  }
}

/** Twirp's status for each error code (twitchtv/twirp errors.go). */
const twirpStatus = {
  canceled: 408,
  invalid_argument: 400,
  malformed: 400,
  deadline_exceeded: 408,
  not_found: 404,
  bad_route: 404,
  already_exists: 409,
  permission_denied: 403,
  unauthenticated: 401,
  resource_exhausted: 429,
  failed_precondition: 412,
  aborted: 409,
  out_of_range: 400,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  dataloss: 500
} as const

export type TwirpCode = keyof typeof twirpStatus

export const twirpError = (code: TwirpCode, message: string): TwirpFailure => new TwirpFailure(code, twirpStatus[code], message)

/** The Twirp code a status stands for (injected failures name only a status). */
export const codeOfStatus = (status: number): string => {
  const preferred: Partial<Record<number, TwirpCode>> = { 400: "malformed", 404: "not_found", 409: "already_exists", 500: "internal" }
  return preferred[status] ?? Object.entries(twirpStatus).find(([, s]) => s === status)?.[0] ?? "internal"
}

export const writeTwirpError = (res: http.ServerResponse, failure: TwirpFailure): void => {
  if (res.destroyed || res.headersSent) return
  const body = JSON.stringify({ code: failure.code, msg: failure.message })
  res.writeHead(failure.status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) })
  res.end(body)
}

export type JsonObject = { readonly [key: string]: unknown }

export const isJsonObject = (value: unknown): value is JsonObject => typeof value === "object" && value !== null && !Array.isArray(value)

/** A request field by its JSON (lowerCamel) name or its proto name, as protojson accepts both. */
const field = (body: JsonObject, camel: string): unknown => body[camel] ?? body[camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)]

export const stringField = (body: JsonObject, name: string): string => {
  const value = field(body, name)
  if (value === undefined || value === null) return ""
  if (typeof value !== "string") throw twirpError("malformed", `${name}: expected a string`)
  return value
}

/** uint32 fields: protojson writes numbers, and accepts numeric strings. */
export const numberField = (body: JsonObject, name: string): number => {
  const value = field(body, name)
  if (value === undefined || value === null) return 0
  const n = typeof value === "string" ? Number(value) : value
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0) throw twirpError("malformed", `${name}: expected a whole number`)
  return n
}

export const stringsField = (body: JsonObject, name: string): ReadonlyArray<string> => {
  const value = field(body, name)
  if (value === undefined || value === null) return []
  if (!Array.isArray(value)) throw twirpError("malformed", `${name}: expected a list`)
  return value.map((item) => {
    if (typeof item !== "string") throw twirpError("malformed", `${name}: expected strings`)
    return item
  })
}

export const stringMapField = (body: JsonObject, name: string): ReadonlyMap<string, string> => {
  const value = field(body, name)
  if (value === undefined || value === null) return new Map()
  if (!isJsonObject(value)) throw twirpError("malformed", `${name}: expected a map`)
  return new Map(
    Object.entries(value).map(([k, v]) => {
      if (typeof v !== "string") throw twirpError("malformed", `${name}.${k}: expected a string`)
      return [k, v]
    })
  )
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

/** An id shaped like LiveKit's `utils.NewGuid`: the prefix and 12 random alphanumerics. */
export const guid = (prefix: string): string => {
  const bytes = randomBytes(12)
  let id = prefix
  for (const byte of bytes) id += ALPHABET[byte % ALPHABET.length]
  return id
}

/** The `Authorization` value LiveKit puts on a webhook: a JWT (5 min) whose `sha256` claim is base64(SHA-256(body)). */
export const signWebhookBody = (apiKey: string, apiSecret: string, body: string): Promise<string> => {
  const token = new AccessToken(apiKey, apiSecret, { ttl: "5m" })
  token.sha256 = createHash("sha256").update(body).digest("base64")
  return token.toJwt()
}

/** POSTs a webhook as LiveKit does; resolves the HTTP status, rejects on a transport error or after 5 s. */
export const postWebhook = (url: string, body: string, authorization: string): Promise<number> =>
  new Promise((resolve, reject) => {
    const request = http.request(url, {
      method: "POST",
      // A fresh connection per delivery, closed after it: receivers in tests can close at once.
      agent: false,
      timeout: 5_000,
      headers: {
        Authorization: authorization,
        "Content-Type": "application/webhook+json",
        "Content-Length": Buffer.byteLength(body)
      }
    }, (response) => {
      response.resume()
      response.on("end", () => resolve(response.statusCode ?? 0))
      response.on("error", reject)
    })
    request.on("timeout", () => request.destroy(new Error(`webhook to ${url}: no answer in 5 s`)))
    request.on("error", reject)
    request.end(body)
  })
