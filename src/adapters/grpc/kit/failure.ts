import { type Metadata, type ServerErrorResponse, status } from "@grpc/grpc-js"
import { Cause, Data, Effect, Option } from "effect"
import { isSqlError, type SqlError } from "effect/sql/SqlError"
import { serviceError } from "../../../layers/grpc/status.ts"
import { ParticipantStoreError } from "../../../layers/ParticipantStore.ts"
import { StateStoreError } from "../../../layers/StateStore.ts"
import { ServiceUnavailable } from "../../../schemas/unavailable.ts"

/** A failure already decided in gRPC terms (bad input, auth, rate limit, deadline). */
export class GrpcFailure extends Data.TaggedError("GrpcFailure")<{
  readonly code: status
  readonly details: string
  readonly metadata?: Metadata
}> {}

/** INVALID_ARGUMENT naming the field (proto field names), as REST's 400 names it. */
export const invalid = (field: string, message: string) => new GrpcFailure({ code: status.INVALID_ARGUMENT, details: `${field}: ${message}` })

/** The failures any service's calls may meet; the kit answers them alike. */
export type CommonError = GrpcFailure | SqlError | StateStoreError | ParticipantStoreError | ServiceUnavailable

/** A service's own (domain) error: a tag and a detail a client may read. */
export interface DomainError {
  readonly _tag: string
  readonly detail: string
}

/** The gRPC status of each of a service's domain errors (one entry per tag, checked by the type); the detail is the message. */
export type Statuses<D extends DomainError> = { readonly [K in D["_tag"]]: status }

const internal = () => serviceError(status.INTERNAL, "Internal error")

/** The gRPC status of a call's error; infrastructure failures are INTERNAL with nothing of their cause. */
const toServiceError = <D extends DomainError>(error: CommonError | D, statuses: Statuses<D>): ServerErrorResponse => {
  if (error instanceof GrpcFailure) {
    return Object.assign(serviceError(error.code, error.details), error.metadata === undefined ? {} : { metadata: error.metadata })
  }
  if (error instanceof ServiceUnavailable) return serviceError(status.UNAVAILABLE, error.detail)
  // Redis down (e.g. Watch cannot subscribe): the client may retry; its own mistakes are not this.
  if (error instanceof StateStoreError) {
    return error.reason === "Backend" ? serviceError(status.UNAVAILABLE, "The state store is unavailable; retry shortly") : internal()
  }
  // A corrupt stored value or a refused write: a defect of ours, logged by responseOf, never shown.
  if (isSqlError(error) || error instanceof ParticipantStoreError) return internal()
  const byTag: Readonly<Record<string, status | undefined>> = statuses
  const code = byTag[error._tag]
  return code === undefined ? internal() : serviceError(code, error.detail)
}

/** The error response for a call's failure cause; defects and unknown failures are logged and INTERNAL. */
export const responseOf = <D extends DomainError>(method: string, cause: Cause.Cause<CommonError | D>, statuses: Statuses<D>) =>
  Effect.gen(function*() {
    const failure = Cause.findErrorOption(cause)
    const response = Option.isSome(failure) ? toServiceError(failure.value, statuses) : internal()
    if (response.code === status.INTERNAL) {
      yield* Effect.logError(`gRPC ${method} failed`, cause).pipe(Effect.annotateLogs({ event: "grpc_internal_error", method }))
    }
    return response
  })

/** What a call interrupted by shutdown gets. */
export const shuttingDown = () => serviceError(status.UNAVAILABLE, "The server is shutting down")
