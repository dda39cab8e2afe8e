import { Context, Effect, Scope } from "effect"

/**
 * The services a handler group captures when its layer is built, for its requests. The build's
 * Scope is left out: `Effect.context` returns the whole context, and a request given the layer's
 * scope would tie its own scoped resources (subscriptions, streams) to a scope that is not its.
 */
export const capturedServices = <R>(): Effect.Effect<Context.Context<Exclude<R, Scope.Scope>>, never, R> =>
  Effect.map(Effect.context<R>(), (context) => Context.omit(Scope.Scope)(context))
