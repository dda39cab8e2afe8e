import { Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import { calculateJwkThumbprint, exportJWK, type JWK, jwtVerify, SignJWT } from "jose"
import { createPublicKey, createSecretKey, randomUUID, type webcrypto } from "node:crypto"
import type { Settings } from "../config/settings.ts"
import type { Principal } from "../schemas/auth.ts"
import { AppConfig } from "./Config.ts"

/** The claims an access token must carry (beyond iss/aud, which jose checks). */
const AccessClaims = Schema.Struct({
  sub: Schema.String.check(Schema.isMinLength(1)),
  device_id: Schema.String.check(Schema.isMinLength(1)),
  scope: Schema.String,
  jti: Schema.String.check(Schema.isMinLength(1)),
  iat: Schema.Number,
  exp: Schema.Number,
  /** The refresh-token family the token was issued with (absent on tokens from before it was added). */
  fid: Schema.optionalKey(Schema.String.check(Schema.isMinLength(1)))
})
const decodeClaims = Schema.decodeUnknownOption(AccessClaims)

/** How far in the future an `iat` may be (clock skew between instances) before the token is refused. */
export const IAT_SKEW_SECONDS = 60

/** Why a bearer token was refused (logged and counted, never sent to the client). */
export class TokenRejected extends Schema.TaggedError<TokenRejected>()("TokenRejected", { reason: Schema.String }) {}

/** The published verification keys (RFC 7517); empty with HS256, whose key is the shared secret. */
export interface JwkSet {
  readonly keys: ReadonlyArray<JWK>
}

interface Keys {
  readonly alg: Settings["auth"]["algorithm"]
  readonly kid: string | undefined
  readonly signing: webcrypto.CryptoKey
  readonly verifying: webcrypto.CryptoKey
  readonly jwks: JwkSet
}

/** WebCrypto parameters per JWS algorithm. */
const webCrypto = {
  HS256: { name: "HMAC", hash: "SHA-256" },
  EdDSA: { name: "Ed25519" },
  ES256: { name: "ECDSA", namedCurve: "P-256" }
} as const

/**
 * The keys as WebCrypto CryptoKeys, made once: jose converts any other key form (bytes, KeyObject)
 * into one on every sign and verify, which was a tenth of a request's CPU.
 */
const keysFrom = (auth: Settings["auth"]): Effect.Effect<Keys> =>
  Effect.promise(async () => {
    const algorithm = webCrypto[auth.algorithm]
    if (Option.isNone(auth.privateKey)) {
      const secret = createSecretKey(Buffer.from(Redacted.value(auth.jwtSecret), "utf8")).toCryptoKey(algorithm, false, ["sign", "verify"])
      return { alg: auth.algorithm, kid: undefined, signing: secret, verifying: secret, jwks: { keys: [] } }
    }
    const privateKey = auth.privateKey.value
    const publicKey = createPublicKey(privateKey)
    const jwk = await exportJWK(publicKey)
    const kid = Option.isSome(auth.keyId) ? auth.keyId.value : await calculateJwkThumbprint(jwk)
    return {
      alg: auth.algorithm,
      kid,
      signing: privateKey.toCryptoKey(algorithm, false, ["sign"]),
      verifying: publicKey.toCryptoKey(algorithm, true, ["verify"]),
      jwks: { keys: [{ ...jwk, kid, alg: auth.algorithm, use: "sig" }] }
    }
  })

export interface SignedToken {
  readonly token: string
  readonly jti: string
  /** Seconds since the epoch. */
  readonly exp: number
  readonly expiresIn: number
}

/**
 * Signs and verifies access JWTs with jose: HS256 with JWT_SECRET, or EdDSA/ES256 with
 * JWT_PRIVATE_KEY (whose public half is published as JWKS); issuer JWT_ISSUER, audience
 * JWT_AUDIENCE, lifetime ACCESS_TOKEN_TTL_SECONDS, refresh-token family as `fid`. Verification pins the
 * one configured algorithm, checks iss/aud/exp/nbf, an `iat` at most IAT_SKEW_SECONDS ahead, and the
 * claims this service relies on.
 */
export class TokenSigner extends Context.Service<TokenSigner, {
  readonly sign: (
    subject: { readonly userId: string; readonly deviceId: string; readonly scope: string; readonly familyId?: string }
  ) => Effect.Effect<SignedToken>
  readonly verify: (token: string) => Effect.Effect<Principal, TokenRejected>
  readonly jwks: JwkSet
}>()("auralink/auth/TokenSigner") {
  static readonly layer = Layer.effect(
    TokenSigner,
    Effect.gen(function*() {
      const { auth } = yield* AppConfig
      const keys = yield* keysFrom(auth)
      const ttl = auth.accessTokenTtlSeconds
      return {
        sign: ({ deviceId, familyId, scope, userId }) =>
          Effect.promise(async () => {
            const jti = randomUUID()
            const iat = Math.floor(Date.now() / 1000)
            const exp = iat + ttl
            const token = await new SignJWT({ device_id: deviceId, scope, ...(familyId === undefined ? {} : { fid: familyId }) })
              .setProtectedHeader(keys.kid === undefined ? { alg: keys.alg, typ: "JWT" } : { alg: keys.alg, typ: "JWT", kid: keys.kid })
              .setSubject(userId)
              .setJti(jti)
              .setIssuedAt(iat)
              .setExpirationTime(exp)
              .setIssuer(auth.issuer)
              .setAudience(auth.audience)
              .sign(keys.signing)
            return { token, jti, exp, expiresIn: ttl }
          }),
        verify: (token) =>
          Effect.tryPromise({
            try: () =>
              jwtVerify(token, keys.verifying, {
                algorithms: [keys.alg],
                issuer: auth.issuer,
                audience: auth.audience,
                requiredClaims: ["sub", "jti", "iat", "exp"]
              }),
            catch: (error) => new TokenRejected({ reason: error instanceof Error && "code" in error ? String(error.code) : "invalid" })
          }).pipe(
            Effect.flatMap(({ payload }) =>
              Option.match(decodeClaims(payload), {
                onNone: () => Effect.fail(new TokenRejected({ reason: "missing_claims" })),
                onSome: (c) =>
                  c.iat > Date.now() / 1000 + IAT_SKEW_SECONDS
                    ? Effect.fail(new TokenRejected({ reason: "iat_in_future" }))
                    : Effect.succeed({
                      userId: c.sub,
                      deviceId: c.device_id,
                      scope: c.scope,
                      jti: c.jti,
                      exp: c.exp,
                      ...(c.fid === undefined ? {} : { familyId: c.fid })
                    })
              })
            )
          ),
        jwks: keys.jwks
      }
    })
  )
}
