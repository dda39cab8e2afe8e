import { assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Option, Result } from "effect"
import type { IStatefulSet } from "kubernetes-models/apps/v1/StatefulSet"
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget"
import { ConfigMap } from "kubernetes-models/v1/ConfigMap"
import type { IContainer } from "kubernetes-models/v1/Container"
import { Secret } from "kubernetes-models/v1/Secret"
import { Service } from "kubernetes-models/v1/Service"
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor"
import { randomBytes } from "node:crypto"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { decodeSettings, type Settings } from "../../src/config/settings.ts"
import { loadRawConfig } from "../../src/config/source.ts"
import {
  copyTree,
  cpuCores,
  describeManifest,
  interpolate,
  isRecord,
  kustomize,
  type Manifest,
  parsePortMapping,
  parseYamlStream,
  podEnvironment,
  type PublishedPorts,
  schemaProblem,
  serviceEnvNames,
  statefulSets
} from "../support/kubernetes.ts"

const ROOT = fileURLToPath(new URL("../..", import.meta.url))

const SOURCE_ENV = serviceEnvNames(join(ROOT, "src"))
/** Seconds the grace period must leave beyond preStop + SHUTDOWN_TIMEOUT_MS (tini and the workers exiting, kubelet latency). */
const GRACE_MARGIN_SECONDS = 5

const KNOWN_ENV: ReadonlySet<string> = SOURCE_ENV

/** The node the simulated pod runs on (TEST-NET-1). */
const NODE_IP = "192.0.2.10"

const strongSecret = () => randomBytes(36).toString("base64url")

/** What an operator writes to overlays/production/secrets.env (the file git ignores). */
const SECRETS: Readonly<Record<string, string>> = {
  JWT_SECRET: strongSecret(),
  DATABASE_URL: "postgres://auralink:pw@postgres.auralink.svc:5432/auralink",
  REDIS_URL: "redis://redis.auralink.svc:6379",
  AUTH_PROVISIONING_KEY: strongSecret(),
  WEBRTC_API_KEY: "lk-key",
  WEBRTC_API_SECRET: strongSecret(),
  DASHBOARD_API_KEY: strongSecret(),
  COMMUNICATION_SERVICE_API_KEY: strongSecret()
}

interface Renders {
  readonly base: ReadonlyArray<Manifest>
  readonly production: ReadonlyArray<Manifest>
}

/** Renders a copy of deploy/kubernetes (the overlay with a secrets.env written into the copy). */
const render = (): Renders => {
  const tree = copyTree(join(ROOT, "deploy/kubernetes"))
  writeFileSync(join(tree, "overlays/production/secrets.env"), Object.entries(SECRETS).map(([k, v]) => `${k}=${v}\n`).join(""))
  return { base: kustomize(join(tree, "base")), production: kustomize(join(tree, "overlays/production")) }
}

const theSet = (objects: ReadonlyArray<Manifest>): IStatefulSet => {
  const [set, ...more] = statefulSets(objects)
  if (set === undefined || more.length > 0) throw new Error(`one StatefulSet expected, found ${statefulSets(objects).length}`)
  return set
}

const theContainer = (set: IStatefulSet): IContainer => {
  const container = set.spec?.template.spec?.containers.find((c) => c.name === "ingress-egress")
  if (container === undefined) throw new Error("no container ingress-egress")
  return container
}

const labelsMatch = (selector: Readonly<Record<string, string>> | undefined, labels: Readonly<Record<string, string>> | undefined) =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v)

/** The preStop sleep in seconds (`sleep N` exec, or the `sleep` action); 0 without one. */
const preStopSeconds = (container: IContainer): number => {
  const preStop = container.lifecycle?.preStop
  if (preStop?.sleep !== undefined) return preStop.sleep.seconds
  const command = preStop?.exec?.command?.join(" ") ?? ""
  const match = /(?:^|\s)sleep\s+(\d+)\b/.exec(command)
  return match === null ? 0 : Number(match[1])
}

/** The file's keys and unset substitutions start-up would warn about. */
const unexpectedWarnings = (settings: Settings): ReadonlyArray<string> => settings.warnings.map(({ message }) => message)

/**
 * What is wrong with a render as a deployment of this service: each line names the fact. The pod is
 * simulated as pod 0 on NODE_IP, its environment resolved as the kubelet would, and its
 * configuration decoded by the service's own reader (src/config).
 */
const renderProblems = (objects: ReadonlyArray<Manifest>) =>
  Effect.gen(function*() {
    const problems: Array<string> = []
    const set = theSet(objects)
    const pod = set.spec?.template.spec
    const podLabels = set.spec?.template.metadata?.labels
    const container = theContainer(set)
    if (pod === undefined) return ["StatefulSet: no pod spec"]

    for (const variable of container.env ?? []) {
      if (!KNOWN_ENV.has(variable.name)) problems.push(`env ${variable.name}: not a variable the service reads`)
    }
    const announced = container.env?.find((v) => v.name === "MEDIASOUP_ANNOUNCED_IP")
    if (announced?.valueFrom?.fieldRef?.fieldPath !== "status.hostIP") {
      problems.push("MEDIASOUP_ANNOUNCED_IP: not the node address (downward API status.hostIP)")
    }
    if (pod.hostNetwork !== true) problems.push("hostNetwork: not set (media ports are the node's)")
    const antiAffinity = pod.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []
    if (!antiAffinity.some((term) => term.topologyKey === "kubernetes.io/hostname" && labelsMatch(term.labelSelector?.matchLabels, podLabels))) {
      problems.push("podAntiAffinity: pods are not kept on separate nodes (their host ports would clash)")
    }

    const env = podEnvironment(objects, set, container, { ordinal: 0, hostIP: NODE_IP })
    const loaded = yield* loadRawConfig(env)
    const decoded = yield* Effect.result(decodeSettings(loaded))
    if (Result.isFailure(decoded)) return [...problems, `configuration: ${decoded.failure.message}`]
    const settings = decoded.success
    problems.push(...unexpectedWarnings(settings).map((message) => `configuration: ${message}`))
    if (settings.service.environment !== "production") problems.push(`ENVIRONMENT: ${settings.service.environment}, not production`)
    if (settings.service.bridgeId !== `${set.metadata?.name}-0`) problems.push(`BRIDGE_ID: ${settings.service.bridgeId}, not the pod name`)
    if (!Option.contains(settings.media.announcedIp, NODE_IP)) problems.push("MEDIASOUP_ANNOUNCED_IP: not the node address as decoded")

    const publicUrl = Option.getOrUndefined(settings.dashboard.publicUrl)
    if (publicUrl === undefined) problems.push("PUBLIC_URL: unset")
    else {
      const url = new URL(publicUrl)
      if (url.hostname !== NODE_IP || Number(url.port || 80) !== settings.http.port) {
        problems.push(`PUBLIC_URL: ${publicUrl} is not this pod's node address and HTTP port ${settings.http.port}`)
      }
    }

    const ports = container.ports ?? []
    const named = (name: string) => ports.find((p) => p.name === name)
    if (named("http")?.containerPort !== settings.http.port) problems.push(`port http: not the HTTP port ${settings.http.port}`)
    if (named("grpc")?.containerPort !== settings.grpc.port) problems.push(`port grpc: not the gRPC port ${settings.grpc.port}`)
    for (let worker = 0; worker < settings.media.workers; worker++) {
      for (const protocol of ["UDP", "TCP"]) {
        const port = settings.media.rtcPort + worker
        if (!ports.some((p) => p.containerPort === port && (p.protocol ?? "TCP") === protocol)) {
          problems.push(`ports: no ${protocol} ${port} (worker ${worker}'s WebRtcServer)`)
        }
      }
    }
    const resolvesToHttp = (port: string | number | undefined) => port === "http" || port === settings.http.port
    const liveness = container.livenessProbe?.httpGet
    if (liveness?.path !== "/health" || !resolvesToHttp(liveness.port)) problems.push("livenessProbe: not GET /health on the HTTP port")
    const readiness = container.readinessProbe?.httpGet
    if (readiness?.path !== "/ready" || !resolvesToHttp(readiness.port)) problems.push("readinessProbe: not GET /ready on the HTTP port")
    const startup = container.startupProbe?.httpGet
    if (container.startupProbe !== undefined && (startup?.path !== "/health" || !resolvesToHttp(startup.port))) problems.push("startupProbe: not GET /health")

    const shutdownMs = settings.service.shutdownTimeoutMs
    const drainMs = settings.cluster.drainTimeoutMs
    if (!(drainMs < shutdownMs)) problems.push(`DRAIN_TIMEOUT_MS ${drainMs} is not below SHUTDOWN_TIMEOUT_MS ${shutdownMs}`)
    const preStop = preStopSeconds(container)
    if (preStop === 0) problems.push("preStop: no sleep before SIGTERM (endpoint removal needs a moment)")
    const grace = pod.terminationGracePeriodSeconds ?? 30
    const needed = preStop + Math.ceil(shutdownMs / 1000) + GRACE_MARGIN_SECONDS
    if (grace < needed) {
      problems.push(
        `terminationGracePeriodSeconds ${grace} < preStop ${preStop} + SHUTDOWN_TIMEOUT_MS/1000 ${shutdownMs / 1000} + margin ${GRACE_MARGIN_SECONDS}`
      )
    }

    const requests = container.resources?.requests
    const limits = container.resources?.limits
    if (requests?.["memory"] === undefined || limits?.["memory"] === undefined) problems.push("resources: memory request and limit expected")
    if (cpuCores(requests?.["cpu"]) < settings.media.workers) {
      problems.push(`resources: cpu request below one core per mediasoup worker (${settings.media.workers})`)
    }
    if (limits?.["cpu"] === undefined) problems.push("resources: cpu limit expected")

    const services = objects.filter(Service.is)
    const headless = services.find((s) => s.metadata?.name === set.spec?.serviceName)
    if (headless?.spec?.clusterIP !== "None") problems.push(`serviceName ${set.spec?.serviceName}: no headless Service of that name`)
    const portNames = new Set(ports.map((p) => p.name))
    for (const service of services) {
      if (!labelsMatch(service.spec?.selector, podLabels)) problems.push(`Service ${service.metadata?.name}: selector does not match the pods`)
      for (const port of service.spec?.ports ?? []) {
        const target = port.targetPort ?? port.port
        if (typeof target === "string" ? !portNames.has(target) : !ports.some((p) => p.containerPort === target)) {
          problems.push(`Service ${service.metadata?.name}: port ${port.name} targets ${target}, which the container does not expose`)
        }
      }
    }
    const targeting = (name: string) => services.some((s) => s.spec?.clusterIP !== "None" && s.spec?.ports?.some((p) => p.targetPort === name))
    if (!targeting("http")) problems.push("no Service for the HTTP port")
    if (!targeting("grpc")) problems.push("no Service for the gRPC port")

    const monitors = objects.filter(ServiceMonitor.is)
    if (monitors.length === 0) problems.push("no ServiceMonitor")
    for (const monitor of monitors) {
      const scraped = services.filter((s) => labelsMatch(monitor.spec.selector.matchLabels, s.metadata?.labels))
      if (scraped.length !== 1) {
        problems.push(`ServiceMonitor ${monitor.metadata?.name}: selects ${scraped.length} Services (one expected: each pod scraped once)`)
      }
      for (const endpoint of monitor.spec.endpoints ?? []) {
        if (endpoint.path !== "/metrics") problems.push(`ServiceMonitor: path ${endpoint.path}, not /metrics`)
        if (!scraped.every((s) => s.spec?.ports?.some((p) => p.name === endpoint.port && p.targetPort === "http"))) {
          problems.push(`ServiceMonitor: port ${endpoint.port} is not the HTTP port of the selected Service`)
        }
      }
    }

    const budgets = objects.filter(PodDisruptionBudget.is)
    if (!budgets.some((b) => labelsMatch(b.spec?.selector?.matchLabels, podLabels))) problems.push("no PodDisruptionBudget for the pods")
    return problems
  })

let renders: Renders

beforeAll(() => {
  renders = render()
})

/** A deep copy of a render with its StatefulSet changed by `change`. */
const withSet = (objects: ReadonlyArray<Manifest>, change: (set: IStatefulSet, container: IContainer) => void): ReadonlyArray<Manifest> => {
  const copy = structuredClone(objects)
  const set = theSet(copy)
  change(set, theContainer(set))
  return copy
}

describe("Kubernetes manifests (kustomize base and production overlay)", () => {
  it("every rendered object is valid against its Kubernetes schema", () => {
    const both: ReadonlyArray<readonly [string, ReadonlyArray<Manifest>]> = [["base", renders.base], ["production", renders.production]]
    for (const [name, objects] of both) {
      const kinds = objects.map(describeManifest).map((d) => d.split(" ")[0]).sort()
      const expected = ["apps/v1/StatefulSet", "monitoring.coreos.com/v1/ServiceMonitor", "policy/v1/PodDisruptionBudget", "v1/ConfigMap", "v1/Secret"]
      for (const kind of expected) assert.include(kinds, kind, `${name}: ${kind}`)
      assert.strictEqual(kinds.filter((k) => k === "v1/Service").length, 3, `${name}: HTTP, gRPC and headless Services`)
      for (const object of objects) assert.isUndefined(schemaProblem(object), `${name}: ${describeManifest(object)}`)
    }
  })

  it("the schema check refuses broken objects", () => {
    const set = theSet(renders.production)
    const broken = structuredClone(set)
    if (broken.spec === undefined) throw new Error("no spec")
    Reflect.set(broken.spec, "replicas", "three")
    assert.match(schemaProblem(broken) ?? "", /replicas must be integer/)
    const noContainers = structuredClone(set)
    if (noContainers.spec?.template.spec === undefined) throw new Error("no pod spec")
    Reflect.deleteProperty(noContainers.spec.template.spec, "containers")
    assert.match(schemaProblem(noContainers) ?? "", /containers/)
    const service = structuredClone(renders.production.filter(Service.is)[0])
    const port = service?.spec?.ports?.[0]
    if (port === undefined) throw new Error("no Service port")
    Reflect.set(port, "port", "http")
    assert.match(schemaProblem(service) ?? "", /port must be integer/)
    const monitor = structuredClone(renders.production.filter(ServiceMonitor.is)[0])
    if (monitor === undefined) throw new Error("no ServiceMonitor")
    Reflect.set(monitor.spec, "endpoints", { port: "http" })
    assert.match(schemaProblem(monitor) ?? "", /endpoints must be array/)
    assert.match(schemaProblem({ apiVersion: "apps/v1", kind: "Deploymnet", metadata: { name: "x" } }) ?? "", /no schema for apps\/v1\/Deploymnet/)
  })

  it.effect("production: the pod starts with its configuration, announces the node, drains within its grace period", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* renderProblems(renders.production), [])
      const set = theSet(renders.production)
      const container = theContainer(set)
      const env = podEnvironment(renders.production, set, container, { ordinal: 2, hostIP: "198.51.100.7" })
      assert.strictEqual(env["BRIDGE_ID"], "auralink-ingress-2")
      assert.strictEqual(env["MEDIASOUP_ANNOUNCED_IP"], "198.51.100.7")
      assert.strictEqual(env["PUBLIC_URL"], "http://198.51.100.7:8080")
      // The overlay's values win over the file's; the grace period was raised with them.
      assert.strictEqual(env["SHUTDOWN_TIMEOUT_MS"], "60000")
      assert.strictEqual(env["DRAIN_TIMEOUT_MS"], "45000")
      assert.isAtLeast(set.spec?.template.spec?.terminationGracePeriodSeconds ?? 0, 5 + 60 + GRACE_MARGIN_SECONDS)
    }))

  it("production overlay: namespace auralink, more replicas, a released image, the secrets from secrets.env", () => {
    const { base, production } = renders
    for (const object of production) {
      if (!isRecord(object) || object["kind"] === "Namespace") continue
      const metadata = object["metadata"]
      assert.strictEqual(isRecord(metadata) ? metadata["namespace"] : undefined, "auralink", describeManifest(object))
    }
    assert.isAbove(theSet(production).spec?.replicas ?? 0, theSet(base).spec?.replicas ?? 0)
    assert.strictEqual(theContainer(theSet(production)).image, "auralink/ingress-egress:0.1.0")
    const secret = production.filter(Secret.is).find((s) => s.metadata?.name === "auralink-ingress-secrets")
    assert.isUndefined(secret?.stringData, "the base's empty stringData would win over data on apply")
    for (const [name, value] of Object.entries(SECRETS)) {
      assert.strictEqual(Buffer.from(secret?.data?.[name] ?? "", "base64").toString("utf8"), value, name)
    }
    // Every secret the pod reads by key is one the Secret holds.
    const keys = (theContainer(theSet(production)).env ?? []).flatMap((v) => v.valueFrom?.secretKeyRef?.key ?? [])
    assert.sameMembers(keys, Object.keys(SECRETS))
  })

  it.effect("base: refuses to start until JWT_SECRET is given, then has nothing else to fix", () =>
    Effect.gen(function*() {
      const problems = yield* renderProblems(renders.base)
      assert.strictEqual(problems.length, 1, problems.join("\n"))
      assert.match(problems[0] ?? "", /^configuration: invalid configuration: JWT_SECRET=\(unset\): expected a secret .*required when ENVIRONMENT=production/)
      const given = structuredClone(renders.base)
      const secret = given.filter(Secret.is)[0]
      if (secret?.stringData === undefined) throw new Error("base Secret without stringData")
      secret.stringData["JWT_SECRET"] = strongSecret()
      assert.deepStrictEqual(yield* renderProblems(given), [])
    }))

  it.effect("the fact checks catch a wrong probe, a short grace period, a fixed media address, an unknown variable or key", () =>
    Effect.gen(function*() {
      const { production } = renders
      const problems = (change: (set: IStatefulSet, container: IContainer) => void) => renderProblems(withSet(production, change))
      assert.deepStrictEqual(
        yield* problems((_, c) => {
          if (c.readinessProbe?.httpGet !== undefined) c.readinessProbe.httpGet.path = "/health"
        }),
        ["readinessProbe: not GET /ready on the HTTP port"]
      )
      assert.deepStrictEqual(
        yield* problems((s) => {
          if (s.spec?.template.spec !== undefined) s.spec.template.spec.terminationGracePeriodSeconds = 60
        }),
        ["terminationGracePeriodSeconds 60 < preStop 5 + SHUTDOWN_TIMEOUT_MS/1000 60 + margin 5"]
      )
      assert.deepStrictEqual(
        yield* problems((_, c) => {
          const announced = c.env?.find((v) => v.name === "MEDIASOUP_ANNOUNCED_IP")
          if (announced !== undefined) {
            delete announced.valueFrom
            announced.value = NODE_IP
          }
        }),
        ["MEDIASOUP_ANNOUNCED_IP: not the node address (downward API status.hostIP)"]
      )
      assert.deepStrictEqual(
        yield* problems((_, c) => c.env?.push({ name: "MEDIASOUP_ANOUNCED_IP", value: NODE_IP })),
        ["env MEDIASOUP_ANOUNCED_IP: not a variable the service reads"]
      )
      assert.deepStrictEqual(
        yield* problems((_, c) => c.env?.push({ name: "DRAIN_TIMEOUT_MS", value: "60000" })),
        ["configuration: invalid configuration: DRAIN_TIMEOUT_MS=\"60000\": expected milliseconds >= 0, below SHUTDOWN_TIMEOUT_MS (ending sessions and closing take the rest)"]
      )
      // A key of auralink.conf that no setting reads (a typo) is refused like a wrong variable.
      const typo = structuredClone(production)
      const map = typo.filter(ConfigMap.is)[0]
      if (map?.data?.["auralink.conf"] === undefined) throw new Error("no auralink.conf")
      map.data["auralink.conf"] += "\nauralink.mediasoup.rtc_prot = 40000\n"
      assert.deepStrictEqual(
        yield* renderProblems(typo),
        ["configuration: configuration file: unknown key auralink.mediasoup.rtc_prot (no setting reads it); ignored"]
      )
    }))

  it("the kustomization files render with kustomize v2 (Debian's kubectl 1.20) too: only fields it knows", () => {
    // kustomize v2.0.3 takes directories only under `bases` and has no `patches`/`replicas`/`labels`.
    for (const file of ["base/kustomization.yaml", "overlays/production/kustomization.yaml"]) {
      const [kustomization] = parseYamlStream(readFileSync(join(ROOT, "deploy/kubernetes", file), "utf8"))
      if (!isRecord(kustomization)) throw new Error(`${file}: not a mapping`)
      const v2Fields = ["apiVersion", "kind", "namespace", "bases", "resources", "images", "patchesStrategicMerge", "configMapGenerator", "secretGenerator"]
      for (const field of Object.keys(kustomization)) assert.include(v2Fields, field, `${file}: ${field}`)
    }
  })
})

// --- docker compose -------------------------------------------------------------------------

const COMPOSE = join(ROOT, "deploy/docker-compose.yml")
const INSTANCES = ["ingress-a", "ingress-b"] as const
const FAKES = {
  "ai-core": "AI_CORE_GRPC_URL",
  asr: "ASR_GATEWAY_URL",
  livekit: "WEBRTC_SERVER_URL",
  dashboard: "DASHBOARD_URL",
  communication: "COMMUNICATION_SERVICE_URL"
} as const
const FAKE_KEYS = { livekit: "WEBRTC_API_KEY", dashboard: "DASHBOARD_API_KEY", communication: "COMMUNICATION_SERVICE_API_KEY" } as const

type ComposeFile = Readonly<Record<string, unknown>>

const loadCompose = (env: Readonly<Record<string, string>>): ComposeFile => {
  const [document] = parseYamlStream(readFileSync(COMPOSE, "utf8"))
  const interpolated = interpolate(document, env)
  if (!isRecord(interpolated)) throw new Error("compose: not a mapping")
  return interpolated
}

const services = (compose: ComposeFile): Readonly<Record<string, unknown>> => {
  const all = compose["services"]
  return isRecord(all) ? all : {}
}

const stringMap = (value: unknown): Record<string, string> =>
  isRecord(value) ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, typeof v === "string" ? v : String(v)])) : {}

const strings = (value: unknown): ReadonlyArray<string> => (Array.isArray(value) ? value.map(String) : [])

const seconds = (duration: unknown): number => {
  const match = /^(\d+)s$/.exec(String(duration))
  return match === null ? 0 : Number(match[1])
}

/** The value after `--flag` in a fake's command. */
const flag = (command: ReadonlyArray<string>, name: string): string | undefined => command[command.indexOf(`--${name}`) + 1]

const composeProblems = (compose: ComposeFile) =>
  Effect.gen(function*() {
    const problems: Array<string> = []
    const all = services(compose)
    const published: Array<readonly [string, PublishedPorts]> = []
    const seen = { bridge: new Set<string>(), url: new Set<string>() }
    for (const name of INSTANCES) {
      const service = all[name]
      if (!isRecord(service)) {
        problems.push(`${name}: missing`)
        continue
      }
      const env = stringMap(service["environment"])
      for (const variable of Object.keys(env)) if (!KNOWN_ENV.has(variable)) problems.push(`${name}: env ${variable}: not a variable the service reads`)
      const decoded = yield* Effect.result(Effect.flatMap(loadRawConfig(env), decodeSettings))
      if (Result.isFailure(decoded)) {
        problems.push(`${name}: configuration: ${decoded.failure.message}`)
        continue
      }
      const settings = decoded.success
      problems.push(...unexpectedWarnings(settings).map((message) => `${name}: configuration: ${message}`))
      const ports = strings(service["ports"]).map(parsePortMapping)
      for (const port of ports) published.push([name, port])
      const publishes = (hostPort: number, containerPort: number, protocol: "tcp" | "udp") =>
        ports.some((p) =>
          p.protocol === protocol && hostPort >= p.hostFirst && hostPort <= p.hostLast && p.containerFirst + hostPort - p.hostFirst === containerPort
        )

      const publicUrl = Option.getOrUndefined(settings.dashboard.publicUrl)
      if (publicUrl === undefined) problems.push(`${name}: PUBLIC_URL unset`)
      else if (!publishes(Number(new URL(publicUrl).port), settings.http.port, "tcp")) {
        problems.push(`${name}: PUBLIC_URL ${publicUrl}: its port is not the published HTTP port`)
      }
      if (!ports.some((p) => p.protocol === "tcp" && p.containerFirst === settings.grpc.port)) problems.push(`${name}: gRPC port not published`)
      for (let worker = 0; worker < settings.media.workers; worker++) {
        const port = settings.media.rtcPort + worker
        for (const protocol of ["udp", "tcp"] as const) {
          if (!publishes(port, port, protocol)) problems.push(`${name}: ${protocol} ${port} (worker ${worker}) not published as the same host port`)
        }
      }
      for (let port = settings.media.rtcMinPort; port <= settings.media.rtcMaxPort; port++) {
        if (!publishes(port, port, "udp")) {
          problems.push(`${name}: plain RTP udp ${port} not published as the same host port`)
          break
        }
      }
      if (seen.bridge.has(settings.service.bridgeId)) problems.push(`${name}: BRIDGE_ID ${settings.service.bridgeId} not distinct`)
      seen.bridge.add(settings.service.bridgeId)
      if (publicUrl !== undefined && seen.url.has(publicUrl)) problems.push(`${name}: PUBLIC_URL ${publicUrl} not distinct`)
      if (publicUrl !== undefined) seen.url.add(publicUrl)
      if (seconds(service["stop_grace_period"]) < settings.service.shutdownTimeoutMs / 1000 + GRACE_MARGIN_SECONDS) {
        problems.push(`${name}: stop_grace_period ${String(service["stop_grace_period"])} < SHUTDOWN_TIMEOUT_MS/1000 + ${GRACE_MARGIN_SECONDS}`)
      }

      const dependsOn = isRecord(service["depends_on"]) ? service["depends_on"] : {}
      for (const dependency of ["postgres", "redis", ...Object.keys(FAKES)]) {
        const condition = dependsOn[dependency]
        if (!isRecord(condition) || condition["condition"] !== "service_healthy") problems.push(`${name}: does not wait for ${dependency} to be healthy`)
        const target = all[dependency]
        if (!isRecord(target) || !isRecord(target["healthcheck"])) problems.push(`${name}: ${dependency} has no healthcheck`)
      }
      // Each upstream URL names its fake's service and the port the fake listens on, with the fake's key.
      for (const [fake, variable] of Object.entries(FAKES)) {
        const target = all[fake]
        const command = isRecord(target) ? strings(target["command"]) : []
        const url = env[variable] ?? ""
        const { hostname, port } = new URL(url.includes("://") ? url : `grpc://${url}`)
        if (hostname !== fake || port !== flag(command, "port")) problems.push(`${name}: ${variable}=${url} is not ${fake}:${flag(command, "port")}`)
      }
      for (const [fake, variable] of Object.entries(FAKE_KEYS)) {
        const target = all[fake]
        if (flag(isRecord(target) ? strings(target["command"]) : [], "api-key") !== env[variable]) problems.push(`${name}: ${variable} is not ${fake}'s key`)
      }
      if (flag(strings(isRecord(all["livekit"]) ? all["livekit"]["command"] : []), "api-secret") !== env["WEBRTC_API_SECRET"]) {
        problems.push(`${name}: WEBRTC_API_SECRET is not the fake LiveKit's secret`)
      }
    }
    // No host port is published twice.
    for (const [i, [owner, a]] of published.entries()) {
      for (const [other, b] of published.slice(i + 1)) {
        if (a.protocol === b.protocol && a.hostFirst <= b.hostLast && b.hostFirst <= a.hostLast) {
          problems.push(`${owner} and ${other}: host ${a.protocol} ports ${a.hostFirst}-${a.hostLast} and ${b.hostFirst}-${b.hostLast} overlap`)
        }
      }
    }
    // The fakes run a main of the repository's test/support from the mounted test/ directory.
    for (const fake of Object.keys(FAKES)) {
      const service = all[fake]
      if (!isRecord(service)) {
        problems.push(`${fake}: missing`)
        continue
      }
      const [node, script = ""] = strings(service["command"])
      if (node !== "node" || !existsSync(join(ROOT, script))) problems.push(`${fake}: command does not run a file of the repository (${script})`)
      if (!strings(service["volumes"]).includes("../test:/app/test:ro")) problems.push(`${fake}: test/ not mounted at /app/test`)
      if (flag(strings(service["command"]), "host") !== "0.0.0.0") problems.push(`${fake}: listens on loopback only`)
    }
    return problems
  })

describe("deploy/docker-compose.yml: two instances, Postgres, Redis and the fakes", () => {
  const env = { JWT_SECRET: strongSecret() }

  it.effect("both instances start with their configuration, distinct ports and URLs, after their dependencies are healthy", () =>
    Effect.gen(function*() {
      const compose = loadCompose(env)
      assert.deepStrictEqual(yield* composeProblems(compose), [])
      const all = services(compose)
      assert.includeMembers(Object.keys(all), [...INSTANCES, "postgres", "redis", ...Object.keys(FAKES)])
      const a = isRecord(all["ingress-a"]) ? stringMap(all["ingress-a"]["environment"]) : {}
      assert.strictEqual(a["JWT_SECRET"], env.JWT_SECRET)
      assert.strictEqual(a["PUBLIC_URL"], "http://127.0.0.1:8081")
    }))

  it("JWT_SECRET is required (both instances must share it)", () => {
    assert.throws(() => loadCompose({}), /JWT_SECRET/)
  })

  it.effect("the checks catch a clashing port and an unknown variable", () =>
    Effect.gen(function*() {
      const compose = structuredClone(loadCompose(env))
      const b = services(compose)["ingress-b"]
      if (!isRecord(b) || !Array.isArray(b["ports"]) || !isRecord(b["environment"])) throw new Error("ingress-b")
      b["ports"][0] = "8081:8080"
      Reflect.set(b["environment"], "INSTANCE_CAPACTY", "10")
      const problems = yield* composeProblems(compose)
      assert.includeMembers(problems, [
        "ingress-b: env INSTANCE_CAPACTY: not a variable the service reads",
        "ingress-a and ingress-b: host tcp ports 8081-8081 and 8081-8081 overlap",
        "ingress-b: PUBLIC_URL http://127.0.0.1:8082: its port is not the published HTTP port"
      ])
    }))
})
