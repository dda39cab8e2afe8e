import { loadSync, type MethodDefinition, type Options, type PackageDefinition, type ServiceDefinition } from "@grpc/proto-loader"
import { fileURLToPath } from "node:url"

/** One set of proto-loader options for every .proto here: camelCase fields, enums and 64-bit ints as strings, defaults filled in. */
export const protoOptions: Options = { longs: String, enums: String, defaults: true, oneofs: true }

/** Loads `proto/<file>` from the repository's proto folder (throws if missing or invalid). */
export const loadProto = (file: string): PackageDefinition => loadSync(fileURLToPath(new URL(`../../../proto/${file}`, import.meta.url)), protoOptions)

/** The method `service`/`method` of `proto/<file>` (path and (de)serializers); throws when it is not there. */
export const loadMethod = (file: string, service: string, method: string): MethodDefinition<object, object> => {
  const found = findService(loadProto(file), service)?.[method]
  if (found === undefined) throw new Error(`proto/${file} has no ${service}/${method}`)
  return found
}

/** The service `name` (fully qualified, e.g. "grpc.health.v1.Health") in a package; undefined for messages, enums or unknown names. */
export const findService = (pkg: PackageDefinition, name: string): ServiceDefinition | undefined => {
  const definition = pkg[name]
  // Messages and enums carry a `format`; services are plain method maps.
  return definition === undefined || "format" in definition ? undefined : definition
}
