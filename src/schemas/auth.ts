import { Context, Schema } from "effect"
import { HttpApiError, HttpApiMiddleware, HttpApiSchema, HttpApiSecurity } from "effect/http-api"
import { ServiceUnavailableResponse } from "./unavailable.ts"
import { StorableText } from "./text.ts"

// ---- bodies ----------------------------------------------------------------------------

const NonEmpty = StorableText.check(Schema.isMinLength(1), Schema.isMaxLength(512))

export const RegisterDevice = Schema.Struct({
  userId: StorableText.check(Schema.isMinLength(1), Schema.isMaxLength(256)),
  name: Schema.optionalKey(StorableText.check(Schema.isMaxLength(256)))
})

/** The device secret is shown once, here; only its scrypt hash is stored. */
export const DeviceCredentials = Schema.Struct({ deviceId: Schema.String, deviceSecret: Schema.String })

export const TokenRequest = Schema.Struct({ deviceId: NonEmpty, deviceSecret: NonEmpty })
export const RefreshRequest = Schema.Struct({ refreshToken: NonEmpty })
export const RevokeRequest = Schema.Struct({ refreshToken: Schema.optionalKey(NonEmpty) })

export const TokenResponse = Schema.Struct({
  accessToken: Schema.String,
  tokenType: Schema.Literal("Bearer"),
  /** Seconds until the access token expires. */
  expiresIn: Schema.Int,
  refreshToken: Schema.String
})

/** Who may register or revoke devices: the operator provisioning key, in either header. */
export const ProvisioningHeaders = Schema.Struct({
  authorization: Schema.optionalKey(Schema.String),
  "x-provisioning-key": Schema.optionalKey(Schema.String)
})

// ---- errors (RFC 9457 problems; the 401s carry WWW-Authenticate) ------------------------

/** `WWW-Authenticate: <challenge>` on a 401 problem (the header rides along the problem body). */
const challenge = (value: string) => ({
  headers: { "www-authenticate": Schema.String },
  encode: <A>(body: A) => ({ body, headers: { "www-authenticate": value } })
})

export class InvalidClient extends HttpApiError.Problem<InvalidClient>()("InvalidClient", {
  type: "about:blank",
  status: 401,
  title: "Unauthorized"
}, { detail: Schema.String }) {}
const invalidClientChallenge = challenge("Bearer error=\"invalid_client\"")
export const InvalidClientResponse = InvalidClient.pipe(HttpApiSchema.encodeToWithHeaders(
  { body: InvalidClient, headers: invalidClientChallenge.headers },
  { decode: ({ body }) => body, encode: invalidClientChallenge.encode }
))

export class InvalidGrant extends HttpApiError.Problem<InvalidGrant>()("InvalidGrant", {
  type: "about:blank",
  status: 401,
  title: "Unauthorized"
}, { detail: Schema.String }) {}
const invalidGrantChallenge = challenge("Bearer error=\"invalid_grant\"")
export const InvalidGrantResponse = InvalidGrant.pipe(HttpApiSchema.encodeToWithHeaders(
  { body: InvalidGrant, headers: invalidGrantChallenge.headers },
  { decode: ({ body }) => body, encode: invalidGrantChallenge.encode }
))

export class InvalidToken extends HttpApiError.Problem<InvalidToken>()("InvalidToken", {
  type: "about:blank",
  status: 401,
  title: "Unauthorized"
}, { detail: Schema.String }) {}
const invalidTokenChallenge = challenge("Bearer error=\"invalid_token\"")
export const InvalidTokenResponse = InvalidToken.pipe(HttpApiSchema.encodeToWithHeaders(
  { body: InvalidToken, headers: invalidTokenChallenge.headers },
  { decode: ({ body }) => body, encode: invalidTokenChallenge.encode }
))

export class ProvisioningUnauthorized extends HttpApiError.Problem<ProvisioningUnauthorized>()("ProvisioningUnauthorized", {
  type: "about:blank",
  status: 401,
  title: "Unauthorized"
}, { detail: Schema.String }) {}
const provisioningUnauthorizedChallenge = challenge("Bearer realm=\"provisioning\"")
export const ProvisioningUnauthorizedResponse = ProvisioningUnauthorized.pipe(HttpApiSchema.encodeToWithHeaders(
  { body: ProvisioningUnauthorized, headers: provisioningUnauthorizedChallenge.headers },
  { decode: ({ body }) => body, encode: provisioningUnauthorizedChallenge.encode }
))

/** Registration with no AUTH_PROVISIONING_KEY configured, or a device of another user. */
export class Forbidden extends HttpApiError.Problem<Forbidden>()("Forbidden", {
  type: "about:blank",
  status: 403,
  title: "Forbidden"
}, { detail: Schema.String }) {}

export class DeviceNotFound extends HttpApiError.Problem<DeviceNotFound>()("DeviceNotFound", {
  type: "about:blank",
  status: 404,
  title: "Not Found"
}, { detail: Schema.String }) {}

export const invalidClient = () => new InvalidClient({ detail: "Invalid client credentials" })
export const invalidGrant = () => new InvalidGrant({ detail: "Invalid refresh token" })
export const invalidToken = () => new InvalidToken({ detail: "Invalid or expired access token" })

// ---- the authenticated principal -----------------------------------------------------

export interface Principal {
  readonly userId: string
  readonly deviceId: string
  readonly scope: string
  readonly jti: string
  /** Expiry, seconds since the epoch. */
  readonly exp: number
  /** The refresh-token family (`fid` claim): denying it denies every access token issued in it. */
  readonly familyId?: string
}

export class CurrentPrincipal extends Context.Service<CurrentPrincipal, Principal>()("auralink/auth/CurrentPrincipal") {}

/**
 * Verifies the bearer access token (HS256, issuer, audience, exp/nbf, deny-list, device) and provides
 * CurrentPrincipal; 503 when the deny-list cannot be read (it fails closed).
 */
export class Authentication extends HttpApiMiddleware.Service<Authentication, {
  provides: CurrentPrincipal
  requires: never
}>()("auralink/auth/Authentication", {
  security: { bearer: HttpApiSecurity.bearer },
  error: [InvalidTokenResponse, ServiceUnavailableResponse]
}) {}
