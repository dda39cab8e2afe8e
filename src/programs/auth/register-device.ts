import { Effect } from "effect"
import { hashSecret, randomToken } from "../../layers/auth/secrets.ts"
import { AuthStore } from "../../layers/AuthStore.ts"

/** Creates a device for `userId`; the secret is returned once and only its scrypt hash is kept. */
export const registerDevice = Effect.fn("auth.registerDevice")(function*(input: { readonly userId: string; readonly name?: string }) {
  const store = yield* AuthStore
  const deviceSecret = randomToken()
  const deviceId = yield* store.createDevice(input.userId, input.name ?? null, yield* hashSecret(deviceSecret))
  yield* Effect.logInfo("device registered").pipe(Effect.annotateLogs({ event: "device_registered", deviceId, userId: input.userId }))
  return { deviceId, deviceSecret }
})
