import { Context, Effect, Layer, Scope } from "effect"
import { HttpApiMiddleware } from "effect/http-api"
import { isSqlError, type SqlError } from "effect/sql/SqlError"
import { CurrentPrincipal, type Principal } from "../../schemas/auth.ts"

/**
 * The services a handler group captures when its layer is built, for its requests. The build's
 * Scope is left out: `Effect.context` returns the whole context, and a request given the layer's
 * scope would tie its own scoped resources (subscriptions, streams) to a scope that is not its.
 */
export const capturedServices = <R>(): Effect.Effect<Context.Context<Exclude<R, Scope.Scope>>, never, R> =>
  Effect.map(Effect.context<R>(), (context) => Context.omit(Scope.Scope)(context))

/**
 * The runner of a handler group whose endpoints sit behind the Authentication middleware: each
 * program gets the caller's principal and the group's captured services; SQL failures become
 * defects (a 500 with the request id, details only in the log).
 */
export const principalRunner =
  <Services>(services: Context.Context<Exclude<Services, Scope.Scope>>) =>
  <A, E>(program: (principal: Principal) => Effect.Effect<A, E | SqlError, Services>) =>
    Effect.flatMap(Effect.service(CurrentPrincipal), (principal) =>
      program(principal).pipe(
        Effect.catchIf((e): e is SqlError => isSqlError(e), Effect.die),
        Effect.provideContext(services)
      ))

/**
 * `group` (an `HttpApiBuilder.group` whose handlers need nothing from the request beyond what
 * effect/http provides) built seeing only the API-wide ProblemDetails middleware instead of every
 * service below the listener. HttpApiBuilder provides the context a group was built in to each of
 * its requests, which copies the request's context and adds every entry of that one: with the whole
 * service graph (~35 entries) that was a few µs on every request of the group.
 */
export const seeingApiMiddlewareOnly = <A, E>(
  group: Layer.Layer<A, E, HttpApiMiddleware.ProblemDetails>
): Layer.Layer<A, E, HttpApiMiddleware.ProblemDetails> =>
  Layer.fromBuild((memoMap, scope) => Effect.updateContext(Layer.buildWithMemoMap(group, memoMap, scope), Context.pick(HttpApiMiddleware.ProblemDetails)))
