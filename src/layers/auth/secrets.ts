import { Effect } from "effect"
import { createHash, randomBytes, scrypt, timingSafeEqual } from "node:crypto"

/** scrypt cost parameters for device secrets (N=2^14, r=8, p=1, 32-byte key). */
const N = 16384
const R = 8
const P = 1
const KEY_LENGTH = 32

/** 32 random bytes, base64url: device secrets and refresh tokens. */
export const randomToken = (): string => randomBytes(32).toString("base64url")

const derive = (secret: string, salt: Buffer) =>
  Effect.callback<Buffer>((resume) => {
    scrypt(secret, salt, KEY_LENGTH, { N, r: R, p: P, maxmem: 64 * 1024 * 1024 }, (error, key) => {
      resume(error === null ? Effect.succeed(key) : Effect.die(error))
    })
  })

/** `scrypt$N$r$p$<salt>$<key>` with a fresh 16-byte salt. */
export const hashSecret = (secret: string) =>
  Effect.gen(function*() {
    const salt = randomBytes(16)
    const key = yield* derive(secret, salt)
    return `scrypt$${N}$${R}$${P}$${salt.toString("base64url")}$${key.toString("base64url")}`
  })

/** A well-formed hash nobody's secret matches: unknown devices cost as much time as known ones. */
export const DECOY_HASH = `scrypt$${N}$${R}$${P}$${Buffer.alloc(16).toString("base64url")}$${Buffer.alloc(KEY_LENGTH).toString("base64url")}`

/** Recomputes with the stored salt and compares in constant time. */
export const verifySecret = (secret: string, stored: string) =>
  Effect.gen(function*() {
    const [scheme, , , , saltText, keyText] = stored.split("$")
    if (scheme !== "scrypt" || saltText === undefined || keyText === undefined) return false
    const expected = Buffer.from(keyText, "base64url")
    const actual = yield* derive(secret, Buffer.from(saltText, "base64url"))
    return expected.length === actual.length && timingSafeEqual(expected, actual)
  })

/** Refresh tokens are stored only as their SHA-256 (hex). */
export const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex")

/** Constant-time string equality (compares SHA-256 digests, so lengths never leak). */
export const constantTimeEquals = (a: string, b: string): boolean =>
  timingSafeEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest())
