import { type ServerErrorResponse, status } from "@grpc/grpc-js"

/** A grpc-js error response: pass it to a unary callback or `emit("error", ...)` it on a stream. */
export const serviceError = (code: status, details: string): ServerErrorResponse => Object.assign(new Error(details), { code, details })

// Matched against the end of a `_tag`, so "SessionNotFound" and "RoomNotFound" both map to NOT_FOUND.
const byKind: ReadonlyArray<readonly [string, status]> = [
  ["NotFound", status.NOT_FOUND],
  ["AlreadyExists", status.ALREADY_EXISTS],
  ["Conflict", status.ABORTED],
  ["InvalidArgument", status.INVALID_ARGUMENT],
  ["ValidationError", status.INVALID_ARGUMENT],
  ["SchemaError", status.INVALID_ARGUMENT],
  ["BadRequest", status.INVALID_ARGUMENT],
  ["FailedPrecondition", status.FAILED_PRECONDITION],
  ["Unauthorized", status.UNAUTHENTICATED],
  ["Unauthenticated", status.UNAUTHENTICATED],
  ["Forbidden", status.PERMISSION_DENIED],
  ["PermissionDenied", status.PERMISSION_DENIED],
  ["RateLimited", status.RESOURCE_EXHAUSTED],
  ["QuotaExceeded", status.RESOURCE_EXHAUSTED],
  ["Timeout", status.DEADLINE_EXCEEDED],
  ["DeadlineExceeded", status.DEADLINE_EXCEEDED],
  ["Unavailable", status.UNAVAILABLE],
  ["CircuitOpen", status.UNAVAILABLE],
  ["NotImplemented", status.UNIMPLEMENTED],
  ["Unsupported", status.UNIMPLEMENTED]
]

/** gRPC status of a tagged error: its exact `_tag` in `overrides`, else by the tag's suffix, else INTERNAL. */
export const statusOf = (error: { readonly _tag: string }, overrides: Readonly<Record<string, status>> = {}): status =>
  overrides[error._tag] ?? byKind.find(([kind]) => error._tag.endsWith(kind))?.[1] ?? status.INTERNAL

/** The error response for a tagged error; INTERNAL/UNKNOWN ones do not show their message to the client. */
export const toServiceError = (
  error: { readonly _tag: string; readonly message?: string },
  overrides?: Readonly<Record<string, status>>
): ServerErrorResponse => {
  const code = statusOf(error, overrides)
  const hidden = code === status.INTERNAL || code === status.UNKNOWN
  return serviceError(code, hidden || !error.message ? error._tag : error.message)
}
