import { Context, Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { type StateStoreError, StateStore } from "./StateStore.ts"

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export interface Device {
  readonly id: string
  readonly userId: string
  readonly secretHash: string
  readonly revoked: boolean
}

export interface NewRefreshToken {
  readonly hash: string
  readonly familyId: string
  readonly deviceId: string
  readonly userId: string
  readonly ttlSeconds: number
}

/** What presenting a refresh token did. */
export type Rotation =
  | { readonly _tag: "Rotated"; readonly userId: string; readonly deviceId: string; readonly familyId: string }
  | { readonly _tag: "Reused"; readonly deviceId: string; readonly familyId: string }
  | { readonly _tag: "Invalid" }

interface TokenRow {
  readonly family_id: string
  readonly device_id: string
  readonly user_id: string
  readonly used_at: Date | null
  readonly revoked_at: Date | null
  readonly expired: boolean
  readonly device_revoked_at: Date | null
}

/** The deny-list key of a refresh-token family (jtis are UUIDs, so the prefix cannot collide with one). */
export const familyDenyKey = (familyId: string) => `family:${familyId}`

/**
 * Devices and refresh tokens in Postgres, and the access-token deny-list in the StateStore
 * (`auth:deny:<jti>`, expiring with the token; `auth:deny:family:<fid>`, for an access token's lifetime).
 */
export class AuthStore extends Context.Service<AuthStore, {
  readonly createDevice: (userId: string, name: string | null, secretHash: string) => Effect.Effect<string, SqlError>
  readonly findDevice: (id: string) => Effect.Effect<Option.Option<Device>, SqlError>
  /** Marks the device and every refresh token of it revoked; false when no such device. */
  readonly revokeDevice: (id: string) => Effect.Effect<boolean, SqlError>
  readonly insertRefreshToken: (token: NewRefreshToken) => Effect.Effect<void, SqlError>
  /**
   * In one transaction (the row locked FOR UPDATE): a live token is marked used and `next`
   * is stored in its family; a used one revokes the whole family (reuse detection).
   */
  readonly rotate: (
    hash: string,
    next: (current: { familyId: string; deviceId: string; userId: string }) => NewRefreshToken
  ) => Effect.Effect<Rotation, SqlError>
  /** Revokes the family of the token with this hash, if it belongs to `deviceId`; true when it did. */
  readonly revokeFamilyOf: (hash: string, deviceId: string) => Effect.Effect<boolean, SqlError>
  readonly denyAccessToken: (jti: string, expSeconds: number) => Effect.Effect<void, StateStoreError>
  /** Denies every access token carrying this family id (`fid`) for `ttlSeconds` (the longest such a token lives). */
  readonly denyFamily: (familyId: string, ttlSeconds: number) => Effect.Effect<void, StateStoreError>
  /** A jti, or `familyDenyKey(fid)`, on the deny-list. */
  readonly isDenied: (jti: string) => Effect.Effect<boolean, StateStoreError>
}>()("auralink/auth/AuthStore") {
  static readonly layer = Layer.effect(
    AuthStore,
    Effect.gen(function*() {
      const sql = yield* SqlClient
      const deny = (yield* StateStore).namespace("auth:deny")

      const insertRefreshToken = (t: NewRefreshToken) =>
        sql`
          INSERT INTO refresh_tokens (token_hash, family_id, device_id, user_id, expires_at)
          VALUES (${t.hash}, ${t.familyId}, ${t.deviceId}, ${t.userId}, now() + make_interval(secs => ${t.ttlSeconds}))
        `.pipe(Effect.asVoid)

      const revokeFamily = (familyId: string) => sql`UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = ${familyId} AND revoked_at IS NULL`

      const rotate: AuthStore["Service"]["rotate"] = (hash, next) =>
        sql.withTransaction(Effect.gen(function*() {
          const rows = yield* sql<TokenRow>`
            SELECT t.family_id, t.device_id, t.user_id, t.used_at, t.revoked_at,
                   t.expires_at <= now() AS expired, d.revoked_at AS device_revoked_at
            FROM refresh_tokens t JOIN devices d ON d.id = t.device_id
            WHERE t.token_hash = ${hash}
            FOR UPDATE OF t`
          const row = rows[0]
          if (row === undefined) return { _tag: "Invalid" } as const
          if (row.used_at !== null) {
            yield* revokeFamily(row.family_id)
            return { _tag: "Reused", deviceId: row.device_id, familyId: row.family_id } as const
          }
          if (row.revoked_at !== null || row.expired || row.device_revoked_at !== null) return { _tag: "Invalid" } as const
          yield* sql`UPDATE refresh_tokens SET used_at = now() WHERE token_hash = ${hash}`
          yield* insertRefreshToken(next({ familyId: row.family_id, deviceId: row.device_id, userId: row.user_id }))
          return { _tag: "Rotated", userId: row.user_id, deviceId: row.device_id, familyId: row.family_id } as const
        }))

      return {
        createDevice: (userId, name, secretHash) =>
          sql<{ id: string }>`
            INSERT INTO devices (user_id, name, secret_hash) VALUES (${userId}, ${name}, ${secretHash}) RETURNING id
          `.pipe(Effect.flatMap((rows) => rows[0] === undefined ? Effect.die(new Error("INSERT returned no row")) : Effect.succeed(rows[0].id))),
        findDevice: (id) =>
          UUID.test(id)
            ? sql<{ id: string; user_id: string; secret_hash: string; revoked_at: Date | null }>`
                SELECT id, user_id, secret_hash, revoked_at FROM devices WHERE id = ${id}`.pipe(
              Effect.map((rows) =>
                Option.map(Option.fromNullishOr(rows[0]), (r) => ({
                  id: r.id,
                  userId: r.user_id,
                  secretHash: r.secret_hash,
                  revoked: r.revoked_at !== null
                }))
              )
            )
            : Effect.succeedNone,
        revokeDevice: (id) =>
          UUID.test(id)
            ? sql.withTransaction(Effect.gen(function*() {
              const rows = yield* sql<{ id: string }>`
                UPDATE devices SET revoked_at = COALESCE(revoked_at, now()) WHERE id = ${id} RETURNING id`
              if (rows.length === 0) return false
              yield* sql`UPDATE refresh_tokens SET revoked_at = now() WHERE device_id = ${id} AND revoked_at IS NULL`
              return true
            }))
            : Effect.succeed(false),
        insertRefreshToken,
        rotate,
        revokeFamilyOf: (hash, deviceId) =>
          sql<{ family_id: string }>`
            UPDATE refresh_tokens SET revoked_at = now()
            WHERE revoked_at IS NULL AND family_id = (
              SELECT family_id FROM refresh_tokens WHERE token_hash = ${hash} AND device_id = ${deviceId}
            )
            RETURNING family_id`.pipe(Effect.map((rows) => rows.length > 0)),
        denyAccessToken: (jti, expSeconds) => {
          const ttlMs = Math.ceil(expSeconds * 1000 - Date.now())
          return ttlMs > 0 ? deny.set(jti, "1", { ttlMs }) : Effect.void
        },
        denyFamily: (familyId, ttlSeconds) => deny.set(familyDenyKey(familyId), "1", { ttlMs: ttlSeconds * 1000 }),
        isDenied: (jti) => Effect.map(deny.get(jti), Option.isSome)
      }
    })
  )
}
