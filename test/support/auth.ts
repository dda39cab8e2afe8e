import { assert } from "@effect/vitest"
import { Effect } from "effect"
import { baseUrl } from "./http.ts"

/** Shared by the HTTP tests of protected endpoints: JSON requests, device registration and login. */

export const PROVISIONING_KEY = "prov-key-for-tests-0123456789abcdef"
export const JWT_SECRET = "test-jwt-secret-0123456789abcdef-0123456789"

export interface JsonResponse {
  readonly status: number
  readonly headers: Headers
  readonly json: Record<string, unknown>
  readonly body: unknown
  readonly text: string
}

export const record = (value: unknown): Record<string, unknown> => typeof value === "object" && value !== null ? Object.fromEntries(Object.entries(value)) : {}

/** `value` as an array (asserted). */
export const list = (value: unknown): ReadonlyArray<unknown> => {
  assert.isArray(value)
  return Array.isArray(value) ? value : []
}

export const str = (value: unknown): string => {
  assert.isString(value)
  return typeof value === "string" ? value : ""
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

/** A request to the layer-built server; `body` is sent as JSON unless it is already a string. */
export const request = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const url = yield* baseUrl
    const init: RequestInit = { method, headers: { "content-type": "application/json", ...headers } }
    if (body !== undefined) init.body = typeof body === "string" ? body : JSON.stringify(body)
    const response = yield* Effect.promise(() => fetch(`${url}${path}`, init))
    const text = yield* Effect.promise(() => response.text())
    const parsed: unknown = text.length > 0 && /json/.test(response.headers.get("content-type") ?? "") ? JSON.parse(text) : undefined
    const result: JsonResponse = { status: response.status, headers: response.headers, json: record(parsed), body: parsed, text }
    return result
  })

/** Registers a device for `userId` with the provisioning key. */
export const registerDevice = (userId: string) =>
  Effect.gen(function*() {
    const res = yield* request("POST", "/api/auth/devices", { userId, name: "test device" }, { "x-provisioning-key": PROVISIONING_KEY })
    assert.strictEqual(res.status, 201, res.text)
    return { deviceId: str(res.json["deviceId"]), deviceSecret: str(res.json["deviceSecret"]) }
  })

/** Device credentials -> tokens. */
export const login = (device: { readonly deviceId: string; readonly deviceSecret: string }) =>
  Effect.gen(function*() {
    const res = yield* request("POST", "/api/auth/token", device)
    assert.strictEqual(res.status, 200, res.text)
    return { accessToken: str(res.json["accessToken"]), refreshToken: str(res.json["refreshToken"]), body: res.json }
  })

/** A registered device of `userId` and an access token for it. */
export const signIn = (userId: string) =>
  Effect.gen(function*() {
    const device = yield* registerDevice(userId)
    const { accessToken } = yield* login(device)
    return { userId, deviceId: device.deviceId, token: accessToken, headers: bearer(accessToken) }
  })
