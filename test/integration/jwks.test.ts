import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { createLocalJWKSet, jwtVerify, SignJWT } from "jose"
import { createPublicKey, generateKeyPairSync } from "node:crypto"
import { ApiRoutes } from "../../src/adapters/http/routes.ts"
import { serveHttp } from "../../src/layers/HttpServer.ts"
import { baseUrl } from "../support/http.ts"
import { onFreshDatabase } from "../support/server.ts"

const PROVISIONING_KEY = "prov-key-for-jwks-tests-0123456789"
const ed25519 = generateKeyPairSync("ed25519")
const p256 = generateKeyPairSync("ec", { namedCurve: "P-256" })
const pem = (key: typeof ed25519.privateKey) => key.export({ type: "pkcs8", format: "pem" }).toString()

const stack = (env: Record<string, string>) => onFreshDatabase(serveHttp(ApiRoutes, 0, "127.0.0.1"), { AUTH_PROVISIONING_KEY: PROVISIONING_KEY, ...env })

const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const url = yield* baseUrl
    const response = yield* Effect.promise(() =>
      fetch(`${url}${path}`, {
        method,
        headers: { "content-type": "application/json", ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) })
      })
    )
    const text = yield* Effect.promise(() => response.text())
    return { status: response.status, headers: response.headers, body: text.length > 0 ? JSON.parse(text) : undefined }
  })

/** Registers a device and returns a fresh access token for it. */
const accessToken = Effect.gen(function*() {
  const device = yield* call("POST", "/api/auth/devices", { userId: "jwks-user" }, { "x-provisioning-key": PROVISIONING_KEY })
  assert.strictEqual(device.status, 201)
  const tokens = yield* call("POST", "/api/auth/token", { deviceId: device.body.deviceId, deviceSecret: device.body.deviceSecret })
  assert.strictEqual(tokens.status, 200)
  return { token: String(tokens.body.accessToken), deviceId: String(device.body.deviceId) }
})

/** The revoke endpoint needs a valid access token: 204 when accepted, 401 otherwise. */
const protectedCall = (token: string) => call("POST", "/api/auth/revoke", {}, { authorization: `Bearer ${token}` })

layer(stack({}), { timeout: 60_000 })("JWKS with HS256 (the default)", (it) => {
  it.effect("publishes no keys: the HS256 secret is never exposed", () =>
    Effect.gen(function*() {
      const jwks = yield* call("GET", "/.well-known/jwks.json")
      assert.strictEqual(jwks.status, 200)
      assert.deepStrictEqual(jwks.body, { keys: [] })
    }))
})

describe.each([
  { alg: "EdDSA", keys: ed25519, kty: "OKP" },
  { alg: "ES256", keys: p256, kty: "EC" }
])("JWKS with $alg", ({ alg, keys, kty }) => {
  layer(stack({ JWT_ALGORITHM: alg, JWT_PRIVATE_KEY: pem(keys.privateKey).replaceAll("\n", "\\n"), JWT_KEY_ID: `k-${alg}` }), { timeout: 60_000 })(
    "server",
    (it) => {
      it.effect("publishes the public key, and issued tokens verify against it alone", () =>
        Effect.gen(function*() {
          const jwks = yield* call("GET", "/.well-known/jwks.json")
          assert.strictEqual(jwks.status, 200)
          assert.lengthOf(jwks.body.keys, 1)
          const [jwk] = jwks.body.keys
          assert.include(jwk, { kty, kid: `k-${alg}`, alg, use: "sig" })
          assert.notProperty(jwk, "d", "no private part")

          const { token } = yield* accessToken
          const verified = yield* Effect.promise(() =>
            jwtVerify(token, createLocalJWKSet(jwks.body), { issuer: "auralink-ingress-egress", audience: "auralink" })
          )
          assert.strictEqual(verified.protectedHeader.alg, alg)
          assert.strictEqual(verified.protectedHeader.kid, `k-${alg}`)
          assert.strictEqual((yield* protectedCall(token)).status, 204)
        }))

      it.effect("refuses an HS256 token keyed with the public key (algorithm confusion) and one signed by another key", () =>
        Effect.gen(function*() {
          const { deviceId } = yield* accessToken
          const claims = () =>
            new SignJWT({ device_id: deviceId, scope: "session" })
              .setSubject("jwks-user").setJti(crypto.randomUUID()).setIssuedAt().setExpirationTime("10m")
              .setIssuer("auralink-ingress-egress").setAudience("auralink")
          const publicPem = createPublicKey(keys.privateKey).export({ type: "spki", format: "pem" }).toString()
          const confused = yield* Effect.promise(() => claims().setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(publicPem)))
          const confusedCall = yield* protectedCall(confused)
          assert.strictEqual(confusedCall.status, 401)
          assert.strictEqual(confusedCall.headers.get("www-authenticate"), "Bearer error=\"invalid_token\"")

          const other = alg === "EdDSA" ? generateKeyPairSync("ed25519") : generateKeyPairSync("ec", { namedCurve: "P-256" })
          const foreign = yield* Effect.promise(() => claims().setProtectedHeader({ alg }).sign(other.privateKey))
          assert.strictEqual((yield* protectedCall(foreign)).status, 401)
        }))
    }
  )
})
