import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor"
import { StatefulSet, type IStatefulSet } from "kubernetes-models/apps/v1/StatefulSet"
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget"
import { ConfigMap } from "kubernetes-models/v1/ConfigMap"
import type { IContainer } from "kubernetes-models/v1/Container"
import { Namespace } from "kubernetes-models/v1/Namespace"
import type { IPodSpec } from "kubernetes-models/v1/PodSpec"
import { Secret } from "kubernetes-models/v1/Secret"
import { Service } from "kubernetes-models/v1/Service"
import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, posix } from "node:path"
import { parseAllDocuments } from "yaml"

/** One rendered object, as parsed: checked against its schema by `schemaProblem`. */
export type Manifest = unknown

/** `kubectl kustomize` (Debian's kubectl, scripts/test-prereqs.sh); KUBECTL names another binary. */
export const KUBECTL = process.env["KUBECTL"] ?? "kubectl"

/** Renders a kustomization directory to its objects (`kubectl kustomize DIR`). */
export const kustomize = (dir: string): ReadonlyArray<Manifest> => {
  const text = execFileSync(KUBECTL, ["kustomize", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 })
  return parseYamlStream(text).map(unwrapSecretData)
}

/**
 * kustomize v5 writes a long Secret value as a block scalar, its base64 broken into lines; the API
 * server's decoder (Go's encoding/base64) skips line breaks, the schema's `byte` format does not.
 * The value as the server reads it: without the line breaks.
 */
const unwrapSecretData = (object: Manifest): Manifest => {
  if (!Secret.is(object) || object.data === undefined) return object
  return { ...object, data: Object.fromEntries(Object.entries(object.data).map(([k, v]) => [k, v.replace(/[\r\n]/g, "")])) }
}

/** Every document of a YAML stream as plain data (`<<` merge keys applied); a syntax error throws. */
export const parseYamlStream = (text: string): ReadonlyArray<unknown> =>
  parseAllDocuments(text, { merge: true }).flatMap((document) => {
    if (document.errors.length > 0) throw new Error(`YAML: ${document.errors.map((e) => e.message).join("; ")}`)
    const value: unknown = document.toJS()
    return value === null ? [] : [value]
  })

type Validator = (object: unknown) => void

interface TypeMeta {
  readonly apiVersion: string
  readonly kind: string
}

const by = <T extends TypeMeta>(is: (value: unknown) => value is T, make: (data: T) => { validate(): void }): Validator => (object) => {
  if (!is(object)) throw new Error("apiVersion/kind do not match")
  make(object).validate()
}

/** The schema of every kind the manifests use (kubernetes-models; prometheus-operator's for ServiceMonitor). */
const validators: Readonly<Record<string, Validator>> = {
  "v1/ConfigMap": by(ConfigMap.is, (d) => new ConfigMap(d)),
  "v1/Secret": by(Secret.is, (d) => new Secret(d)),
  "v1/Service": by(Service.is, (d) => new Service(d)),
  "v1/Namespace": by(Namespace.is, (d) => new Namespace(d)),
  "apps/v1/StatefulSet": by(StatefulSet.is, (d) => new StatefulSet(d)),
  "policy/v1/PodDisruptionBudget": by(PodDisruptionBudget.is, (d) => new PodDisruptionBudget(d)),
  "monitoring.coreos.com/v1/ServiceMonitor": by(ServiceMonitor.is, (d) => new ServiceMonitor(d))
}

export const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> => typeof value === "object" && value !== null && !Array.isArray(value)

const text = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined)

/** `apiVersion/kind name`, for messages. */
export const describeManifest = (object: Manifest): string => {
  if (!isRecord(object)) return "(not an object)"
  const name = isRecord(object["metadata"]) ? text(object["metadata"]["name"]) : undefined
  return `${text(object["apiVersion"]) ?? "?"}/${text(object["kind"]) ?? "?"} ${name ?? "?"}`
}

/** What the Kubernetes schema of this object's kind says is wrong with it; undefined when it is valid. */
export const schemaProblem = (object: Manifest): string | undefined => {
  if (!isRecord(object)) return "not an object"
  const kind = `${text(object["apiVersion"]) ?? "?"}/${text(object["kind"]) ?? "?"}`
  const validate = validators[kind]
  if (validate === undefined) return `no schema for ${kind}`
  try {
    validate(object)
    return undefined
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  }
}

export const statefulSets = (objects: ReadonlyArray<Manifest>): ReadonlyArray<IStatefulSet> => objects.filter(StatefulSet.is)

export const named = <T extends { readonly metadata?: { readonly name?: string } }>(items: ReadonlyArray<T>, name: string): T | undefined =>
  items.find((item) => item.metadata?.name === name)

/** A ConfigMap's or Secret's entries as text (Secret `data` is base64; `stringData` is plain). */
const entries = (objects: ReadonlyArray<Manifest>, kind: "ConfigMap" | "Secret", name: string): Readonly<Record<string, string>> | undefined => {
  if (kind === "ConfigMap") {
    const map = named(objects.filter(ConfigMap.is), name)
    return map === undefined ? undefined : { ...map.data }
  }
  const secret = named(objects.filter(Secret.is), name)
  if (secret === undefined) return undefined
  const decoded = Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]))
  return { ...decoded, ...secret.stringData }
}

/** Where the pod runs, for the downward API. */
export interface PodPlacement {
  readonly ordinal: number
  readonly hostIP: string
}

/** `$(NAME)` of a variable defined earlier in the list is replaced, `$$` stands for `$`, as the kubelet does. */
const expand = (value: string, defined: Readonly<Record<string, string>>): string =>
  value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string | undefined) => {
    if (name === undefined) return "$"
    return defined[name] ?? whole
  })

/**
 * The environment `container` of `set`'s pod number `placement.ordinal` starts with, resolved as the
 * kubelet would: literal values (with `$(VAR)` expansion), the downward API, and keys of the rendered
 * Secrets and ConfigMaps; configMap volumes are written to a temporary directory and paths under
 * their mount points (e.g. AURALINK_CONFIG) point into it. Throws on a reference nothing satisfies.
 */
export const podEnvironment = (
  objects: ReadonlyArray<Manifest>,
  set: IStatefulSet,
  container: IContainer,
  placement: PodPlacement
): Record<string, string> => {
  const pod = set.spec?.template.spec
  if (pod === undefined) throw new Error("StatefulSet without a pod template spec")
  const rewrite = mountedPaths(objects, pod, container)
  const env: Record<string, string> = {}
  for (const variable of container.env ?? []) {
    const from = variable.valueFrom
    let value: string | undefined
    if (from === undefined) value = expand(variable.value ?? "", env)
    else if (from.fieldRef !== undefined) value = downward(from.fieldRef.fieldPath, set, placement)
    else if (from.secretKeyRef !== undefined || from.configMapKeyRef !== undefined) {
      const ref = from.secretKeyRef ?? from.configMapKeyRef
      const kind = from.secretKeyRef !== undefined ? "Secret" : "ConfigMap"
      const found = ref === undefined ? undefined : entries(objects, kind, ref.name ?? "")?.[ref.key]
      if (found === undefined && ref?.optional !== true) throw new Error(`${variable.name}: ${kind} ${ref?.name}: no key ${ref?.key}`)
      value = found
    } else throw new Error(`${variable.name}: unsupported valueFrom`)
    if (value !== undefined) env[variable.name] = rewrite(value)
  }
  return env
}

const downward = (fieldPath: string, set: IStatefulSet, placement: PodPlacement): string => {
  switch (fieldPath) {
    case "metadata.name":
      return `${set.metadata?.name ?? ""}-${placement.ordinal}`
    case "metadata.namespace":
      return set.metadata?.namespace ?? "default"
    case "status.hostIP":
      return placement.hostIP
    case "status.podIP":
      if (set.spec?.template.spec?.hostNetwork === true) return placement.hostIP
      throw new Error("status.podIP: only modelled with hostNetwork (the node's address)")
    default:
      throw new Error(`downward API field not modelled: ${fieldPath}`)
  }
}

/** Writes each configMap volume the container mounts to a temporary directory; maps a path under a mount to it. */
const mountedPaths = (objects: ReadonlyArray<Manifest>, pod: IPodSpec, container: IContainer): (value: string) => string => {
  const mounts: Array<readonly [string, string]> = []
  for (const mount of container.volumeMounts ?? []) {
    const volume = pod.volumes?.find((v) => v.name === mount.name)
    const mapName = volume?.configMap?.name
    if (mapName === undefined) continue
    const data = entries(objects, "ConfigMap", mapName)
    if (data === undefined) throw new Error(`volume ${mount.name}: no ConfigMap ${mapName} in the render`)
    const dir = mkdtempSync(join(tmpdir(), "auralink-configmap-"))
    for (const [file, content] of Object.entries(data)) writeFileSync(join(dir, file), content)
    mounts.push([posix.normalize(mount.mountPath), dir])
  }
  return (value) => {
    for (const [mountPath, dir] of mounts) {
      if (value.startsWith(`${mountPath}/`)) return join(dir, value.slice(mountPath.length + 1))
    }
    return value
  }
}

/** Copies a directory tree (e.g. deploy/kubernetes) to a fresh temporary directory, so files can be added to the copy. */
export const copyTree = (from: string): string => {
  const to = mkdtempSync(join(tmpdir(), "auralink-kustomize-"))
  const copy = (source: string, target: string): void => {
    mkdirSync(target, { recursive: true })
    for (const entry of readdirSync(source, { withFileTypes: true })) {
      if (entry.isDirectory()) copy(join(source, entry.name), join(target, entry.name))
      else if (entry.isFile()) writeFileSync(join(target, entry.name), readFileSync(join(source, entry.name)))
    }
  }
  copy(from, to)
  return to
}

/** A Kubernetes CPU quantity (`2`, `1500m`, `0.5`) in cores. */
export const cpuCores = (quantity: string | number | undefined): number => {
  if (quantity === undefined) return 0
  if (typeof quantity === "number") return quantity
  return quantity.endsWith("m") ? Number(quantity.slice(0, -1)) / 1000 : Number(quantity)
}

/** The `.ts` files under `dir`, with their text. */
const sources = (dir: string): ReadonlyArray<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sources(path)
    return entry.name.endsWith(".ts") ? [readFileSync(path, "utf8")] : []
  })

const matches = (texts: ReadonlyArray<string>, pattern: RegExp): ReadonlySet<string> =>
  new Set(texts.flatMap((text) => [...text.matchAll(pattern)].flatMap((match) => match[1] ?? [])))

/**
 * The environment variable names the service reads, from its source: `key("NAME", ...)` and
 * `secret("NAME", ...)` in src/config, and `env["NAME"]` reads elsewhere in src.
 */
export const serviceEnvNames = (srcDir: string): ReadonlySet<string> => {
  const texts = sources(srcDir)
  return new Set([...matches(texts, /\b(?:key|secret)\(\s*"([A-Z][A-Z0-9_]*)"/g), ...matches(texts, /\benv\[\s*"([A-Z][A-Z0-9_]*)"\s*\]/g)])
}

/**
 * Docker Compose's variable interpolation (`${NAME}`, `${NAME:-default}`, `${NAME-default}`,
 * `${NAME:?message}`, `${NAME?message}`, `$$`) over a parsed compose file's strings, from `env`.
 */
export const interpolate = (value: unknown, env: Readonly<Record<string, string>>): unknown => {
  if (typeof value === "string") {
    return value.replace(
      /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}/g,
      (_match, name: string | undefined, colon: string | undefined, op: string | undefined, arg: string | undefined) => {
        if (name === undefined) return "$"
        const given = env[name]
        const missing = given === undefined || (colon === ":" && given === "")
        if (!missing) return given
        if (op === "-") return arg ?? ""
        if (op === "?") throw new Error(`compose: ${name}: ${arg ?? "required"}`)
        return ""
      }
    )
  }
  if (Array.isArray(value)) return value.map((item) => interpolate(item, env))
  if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env)]))
  return value
}

/** One published port range of a compose service (`"8081:8080"`, `"40000-40001:40000-40001/udp"`). */
export interface PublishedPorts {
  readonly hostFirst: number
  readonly hostLast: number
  readonly containerFirst: number
  readonly containerLast: number
  readonly protocol: "tcp" | "udp"
}

export const parsePortMapping = (mapping: string): PublishedPorts => {
  const match = /^(?:[\d.]+:)?(\d+)(?:-(\d+))?:(\d+)(?:-(\d+))?(?:\/(tcp|udp))?$/.exec(mapping)
  if (match === null) throw new Error(`compose: a port mapping HOST:CONTAINER[/proto] expected, got ${mapping}`)
  const [, hostFirst = "", hostLast, containerFirst = "", containerLast, protocol] = match
  return {
    hostFirst: Number(hostFirst),
    hostLast: Number(hostLast ?? hostFirst),
    containerFirst: Number(containerFirst),
    containerLast: Number(containerLast ?? containerFirst),
    protocol: protocol === "udp" ? "udp" : "tcp"
  }
}
