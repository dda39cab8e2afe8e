import type { PackageDefinition, ServiceDefinition } from "@grpc/proto-loader"
import { Effect, Schema, SchemaIssue } from "effect"
import { type GrpcFailure, invalid } from "./failure.ts"

/**
 * What a request that is not valid protobuf for its message type becomes. grpc-js would answer
 * such bytes INTERNAL itself; this way the handler runs (after auth) and answers INVALID_ARGUMENT.
 */
const MALFORMED: unique symbol = Symbol("auralink/grpc/malformed")
export const isMalformed = (request: unknown): boolean => typeof request === "object" && request !== null && MALFORMED in request

/** `pkg` with `service`'s request deserializers made total (malformed bytes -> the MALFORMED marker). */
export const tolerantRequests = (pkg: PackageDefinition, service: string): PackageDefinition => {
  const definition = pkg[service]
  // Messages and enums carry a `format`; services are plain method maps.
  if (definition === undefined || "format" in definition) return pkg
  const methods: ServiceDefinition = Object.fromEntries(
    Object.entries(definition).map(([name, m]) => [name, {
      ...m,
      requestDeserialize: (bytes: Buffer): object => {
        try {
          return m.requestDeserialize(bytes)
        } catch {
          return { [MALFORMED]: true }
        }
      }
    }])
  )
  return { ...pkg, [service]: methods }
}

/** A proto-loader message as a plain record (anything else: empty). */
export const asRecord = (value: unknown): Record<string, unknown> =>
  typeof value === "object" && value !== null ? Object.fromEntries(Object.entries(value)) : {}

/** The first issue of a schema failure as "<path>: <message>", the path in proto field names. */
const describeIssue = (issue: SchemaIssue.Issue, prefix: string, names: Readonly<Record<string, string>>): GrpcFailure => {
  const [first] = SchemaIssue.makeFormatterStandardSchemaV1()(issue).issues
  const path = (first?.path ?? []).map((segment) => {
    const key = typeof segment === "object" && segment !== null && "key" in segment ? segment.key : segment
    return typeof key === "string" ? names[key] ?? key : String(key)
  })
  return invalid([prefix, ...path].filter((s) => s.length > 0).join("."), first?.message ?? "invalid")
}

/**
 * `input` decoded with `schema`, or INVALID_ARGUMENT naming the first bad field: `prefix` then the
 * issue's path, each key renamed by `names` (schema key -> proto field name).
 */
export const decodeWith = <S extends Schema.Top & { readonly DecodingServices: never }>(
  schema: S,
  input: unknown,
  prefix: string,
  names: Readonly<Record<string, string>> = {}
): Effect.Effect<S["Type"], GrpcFailure> =>
  Schema.decodeUnknownEffect(schema)(input).pipe(Effect.mapError((error) => describeIssue(error.issue, prefix, names)))

/** Schema key -> proto field name (camelCase -> snake_case) for every key of a Struct's `fields`, as `decodeWith`'s `names`. */
export const protoFieldNames = (fields: object): Readonly<Record<string, string>> =>
  Object.fromEntries(Object.keys(fields).map((key) => [key, key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)]))
