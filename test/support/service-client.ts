import { JWT_SECRET, PROVISIONING_KEY } from "./auth.ts"

/** Plain-fetch helpers for tests against the real process (test/support/process.ts). */

export const asRecord = (value: unknown): Record<string, unknown> =>
  typeof value === "object" && value !== null ? Object.fromEntries(Object.entries(value)) : {}

export interface Reply {
  readonly status: number
  readonly ms: number
  readonly headers: Headers
  readonly json: Record<string, unknown>
}

/** One request; JSON in and out; `timeoutMs` aborts a request that hangs (status 0). */
export const call = async (url: string, init: RequestInit & { readonly timeoutMs?: number } = {}): Promise<Reply> => {
  const began = performance.now()
  try {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(init.timeoutMs ?? 30_000) })
    const text = await response.text()
    let json: Record<string, unknown> = {}
    try {
      json = asRecord(text.length > 0 ? JSON.parse(text) : {})
    } catch {
      // not JSON
    }
    return { status: response.status, ms: performance.now() - began, headers: response.headers, json }
  } catch {
    return { status: 0, ms: performance.now() - began, headers: new Headers(), json: {} }
  }
}

/** The environment a service needs for these helpers: the test JWT secret and provisioning key. */
export const authEnv = { JWT_SECRET, AUTH_PROVISIONING_KEY: PROVISIONING_KEY }

/** Registers a device of a fresh user and logs it in: the headers of its requests. */
export const signedInClient = async (baseUrl: string, user = `user-${crypto.randomUUID()}`) => {
  const registered = await call(`${baseUrl}/api/auth/devices`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-provisioning-key": PROVISIONING_KEY },
    body: JSON.stringify({ userId: user })
  })
  if (registered.status !== 201) throw new Error(`device registration answered ${registered.status}`)
  const login = await call(`${baseUrl}/api/auth/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ deviceId: registered.json["deviceId"], deviceSecret: registered.json["deviceSecret"] })
  })
  if (login.status !== 200) throw new Error(`login answered ${login.status}`)
  const headers = { authorization: `Bearer ${String(login.json["accessToken"])}`, "content-type": "application/json" }
  return {
    headers,
    token: String(login.json["accessToken"]),
    post: (path: string, body: unknown = null, timeoutMs?: number) =>
      call(`${baseUrl}${path}`, { method: "POST", headers, body: JSON.stringify(body), ...(timeoutMs === undefined ? {} : { timeoutMs }) }),
    get: (path: string, timeoutMs?: number) => call(`${baseUrl}${path}`, { headers, ...(timeoutMs === undefined ? {} : { timeoutMs }) })
  }
}
