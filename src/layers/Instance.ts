import { Context, Effect, Layer } from "effect"
import { randomUUID } from "node:crypto"
import { hostname } from "node:os"
import { AppConfig } from "./Config.ts"

/** This process among the instances sharing Postgres and Redis: a fresh id per start (a restarted process is a new holder of any lease). */
export class Instance extends Context.Service<Instance, { readonly id: string }>()("auralink/Instance") {
  static readonly layer = Layer.effect(
    Instance,
    Effect.gen(function*() {
      const { service } = yield* AppConfig
      return { id: `${service.bridgeId}/${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}` }
    })
  )
}
