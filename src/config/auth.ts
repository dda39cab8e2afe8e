import { Effect, Option, Redacted } from "effect"
import { createPrivateKey, type KeyObject, randomBytes } from "node:crypto"
import { key, seconds, secret } from "./key.ts"
import { environment } from "./service.ts"

export type JwtAlgorithm = "HS256" | "EdDSA" | "ES256"

/**
 * A secret too guessable for production: fewer than 10 distinct characters, or under 96 bits by its
 * own character frequencies (length x Shannon entropy), e.g. one repeated character or `abab...`.
 */
export const isLowEntropy = (secret: string): boolean => {
  const counts = new Map<string, number>()
  for (const char of secret) counts.set(char, (counts.get(char) ?? 0) + 1)
  const length = [...secret].length
  let bitsPerChar = 0
  for (const n of counts.values()) bitsPerChar -= (n / length) * Math.log2(n / length)
  return counts.size < 10 || bitsPerChar * length < 96
}

/** The node:crypto key type and curve each asymmetric algorithm needs. */
const keyShapes: Record<Exclude<JwtAlgorithm, "HS256">, { readonly type: string; readonly curve?: string; readonly text: string }> = {
  EdDSA: { type: "ed25519", text: "a PKCS#8 PEM Ed25519 private key (JWT_ALGORITHM=EdDSA)" },
  ES256: { type: "ec", curve: "prime256v1", text: "a PKCS#8 PEM P-256 private key (JWT_ALGORITHM=ES256)" }
}

/** Parses a PEM private key (literal `\n` allowed, as env files write it) and checks its type. */
const parsePrivateKey = (pem: string, algorithm: Exclude<JwtAlgorithm, "HS256">): KeyObject | undefined => {
  try {
    const key = createPrivateKey(pem.replaceAll("\\n", "\n"))
    const shape = keyShapes[algorithm]
    const matches = key.asymmetricKeyType === shape.type &&
      (shape.curve === undefined || key.asymmetricKeyDetails?.namedCurve === shape.curve)
    return matches ? key : undefined
  } catch {
    return undefined
  }
}

const algorithm = key("JWT_ALGORITHM", "auralink.auth.jwt_algorithm")
  .literal(["HS256", "EdDSA", "ES256"], "HS256", "one of HS256, EdDSA, ES256")

const JWT_SECRET = secret("JWT_SECRET", "auralink.auth.jwt_secret")
/** The given JWT_SECRET: at least 32 characters; in production with HS256, required and random. */
const jwtSecret = Effect.gen(function*() {
  const given = yield* JWT_SECRET.optional()
  if (Option.isSome(given) && Redacted.value(given.value).length < 32) return yield* JWT_SECRET.fail("at least 32 characters")
  if ((yield* environment) !== "production" || (yield* algorithm) !== "HS256") return given
  if (Option.isNone(given)) return yield* JWT_SECRET.fail("a secret of at least 32 characters (required when ENVIRONMENT=production)")
  return isLowEntropy(Redacted.value(given.value))
    ? yield* JWT_SECRET.fail("a random secret when ENVIRONMENT=production: at least 10 distinct characters and ~96 bits (e.g. openssl rand -base64 48)")
    : given
})

const JWT_PRIVATE_KEY = secret("JWT_PRIVATE_KEY", "auralink.auth.jwt_private_key")
const privateKey = Effect.gen(function*() {
  const chosen = yield* algorithm
  if (chosen === "HS256") return yield* Effect.as(JWT_PRIVATE_KEY.unused, Option.none<KeyObject>())
  const pem = yield* JWT_PRIVATE_KEY.optional()
  const parsed = Option.isSome(pem) ? parsePrivateKey(Redacted.value(pem.value), chosen) : undefined
  return parsed === undefined ? yield* JWT_PRIVATE_KEY.fail(keyShapes[chosen].text) : Option.some(parsed)
})

const AUTH_PROVISIONING_KEY = secret("AUTH_PROVISIONING_KEY", "auralink.auth.provisioning_key")
const provisioningKey = Effect.gen(function*() {
  const given = yield* AUTH_PROVISIONING_KEY.optional()
  const env = yield* environment
  if (Option.isSome(given) && env === "production" && Redacted.value(given.value).length < 32) {
    return yield* AUTH_PROVISIONING_KEY.fail("at least 32 characters when ENVIRONMENT=production")
  }
  return { given, generate: Option.isNone(given) && env === "development" }
})

export const auth = Effect.all({
  jwtSecret: Effect.map(jwtSecret, Option.getOrElse(() => Redacted.make(randomBytes(32).toString("base64url")))),
  /** true when no JWT_SECRET was given and a random one was made for this process. */
  jwtSecretEphemeral: Effect.map(jwtSecret, Option.isNone),
  /** HS256 signs with jwtSecret; EdDSA (Ed25519) and ES256 (P-256) sign with privateKey and publish JWKS. */
  algorithm,
  privateKey,
  /** The `kid` of the published key; None: its RFC 7638 thumbprint. */
  keyId: key("JWT_KEY_ID", "auralink.auth.jwt_key_id").optional(),
  issuer: key("JWT_ISSUER", "auralink.auth.jwt_issuer").text("auralink-ingress-egress"),
  audience: key("JWT_AUDIENCE", "auralink.auth.jwt_audience").text("auralink"),
  accessTokenTtlSeconds: key("ACCESS_TOKEN_TTL_SECONDS", "auralink.auth.access_token_ttl_seconds").int(900, seconds),
  refreshTokenTtlSeconds: key("REFRESH_TOKEN_TTL_SECONDS", "auralink.auth.refresh_token_ttl_seconds").int(2_592_000, seconds),
  /** The operator key that may register and revoke devices; None: registration is refused. */
  // Development only: a first run with no configuration can use the demo (the key is logged once at start).
  provisioningKey: Effect.map(provisioningKey, ({ generate, given }) => generate ? Option.some(Redacted.make(randomBytes(24).toString("base64url"))) : given),
  /** true when ENVIRONMENT=development gave no key and a random one was made for this process (logged once at start). */
  provisioningKeyGenerated: Effect.map(provisioningKey, ({ generate }) => generate)
})
