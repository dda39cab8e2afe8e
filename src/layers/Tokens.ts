import { Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import { jwtVerify, SignJWT } from "jose"
import { randomUUID } from "node:crypto"
import type { Principal } from "../schemas/auth.ts"
import { AppConfig } from "./Config.ts"

/** The claims an access token must carry (beyond iss/aud, which jose checks). */
const AccessClaims = Schema.Struct({
  sub: Schema.String.check(Schema.isMinLength(1)),
  device_id: Schema.String.check(Schema.isMinLength(1)),
  scope: Schema.String,
  jti: Schema.String.check(Schema.isMinLength(1)),
  iat: Schema.Number,
  exp: Schema.Number
})
const decodeClaims = Schema.decodeUnknownOption(AccessClaims)

/** Why a bearer token was refused (logged and counted, never sent to the client). */
export class TokenRejected extends Schema.TaggedError<TokenRejected>()("TokenRejected", { reason: Schema.String }) {}

export interface SignedToken {
  readonly token: string
  readonly jti: string
  /** Seconds since the epoch. */
  readonly exp: number
  readonly expiresIn: number
}

/**
 * Signs and verifies access JWTs with jose: HS256 with JWT_SECRET, issuer JWT_ISSUER, audience
 * JWT_AUDIENCE, lifetime ACCESS_TOKEN_TTL_SECONDS. Verification pins the algorithm, checks
 * iss/aud/exp/nbf and the claims this service relies on.
 */
export class TokenSigner extends Context.Service<TokenSigner, {
  readonly sign: (subject: { readonly userId: string; readonly deviceId: string; readonly scope: string }) => Effect.Effect<SignedToken>
  readonly verify: (token: string) => Effect.Effect<Principal, TokenRejected>
}>()("auralink/auth/TokenSigner") {
  static readonly layer = Layer.effect(
    TokenSigner,
    Effect.gen(function*() {
      const { auth } = yield* AppConfig
      const key = new TextEncoder().encode(Redacted.value(auth.jwtSecret))
      const ttl = auth.accessTokenTtlSeconds
      return {
        sign: ({ deviceId, scope, userId }) =>
          Effect.promise(async () => {
            const jti = randomUUID()
            const iat = Math.floor(Date.now() / 1000)
            const exp = iat + ttl
            const token = await new SignJWT({ device_id: deviceId, scope })
              .setProtectedHeader({ alg: "HS256", typ: "JWT" })
              .setSubject(userId)
              .setJti(jti)
              .setIssuedAt(iat)
              .setExpirationTime(exp)
              .setIssuer(auth.issuer)
              .setAudience(auth.audience)
              .sign(key)
            return { token, jti, exp, expiresIn: ttl }
          }),
        verify: (token) =>
          Effect.tryPromise({
            try: () =>
              jwtVerify(token, key, {
                algorithms: ["HS256"],
                issuer: auth.issuer,
                audience: auth.audience,
                requiredClaims: ["sub", "jti", "iat", "exp"]
              }),
            catch: (error) => new TokenRejected({ reason: error instanceof Error && "code" in error ? String(error.code) : "invalid" })
          }).pipe(
            Effect.flatMap(({ payload }) =>
              Option.match(decodeClaims(payload), {
                onNone: () => Effect.fail(new TokenRejected({ reason: "missing_claims" })),
                onSome: (c) => Effect.succeed({ userId: c.sub, deviceId: c.device_id, scope: c.scope, jti: c.jti, exp: c.exp })
              })
            )
          )
      }
    })
  )
}
