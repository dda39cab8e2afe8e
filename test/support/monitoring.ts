import { parser } from "@prometheus-io/lezer-promql"
import { spawnSync } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { parse as parseYaml } from "yaml"
import { list, record } from "./auth.ts"

/**
 * Reading the monitoring assets in deploy/ (Grafana dashboards, Prometheus alert rules) and
 * the service's `/metrics`, for test/integration/deploy-monitoring.test.ts.
 */

export const GRAFANA_DIR = join(import.meta.dirname, "..", "..", "deploy", "grafana")
export const DASHBOARDS_DIR = join(GRAFANA_DIR, "dashboards")
export const PROMETHEUS_DIR = join(import.meta.dirname, "..", "..", "deploy", "prometheus")

/** Grafana's interval variables, as a PromQL duration (Grafana substitutes them before the query leaves). */
const GRAFANA_INTERVALS = /\$__(?:rate_interval|interval|range)\b/g

/** A query with Grafana's interval variables replaced; other variables may only sit inside label values. */
export const withGrafanaVariables = (expr: string): string => expr.replace(GRAFANA_INTERVALS, "5m")

/** A StringLiteral node's text: "…" or '…' with escapes, or `…` raw. */
const stringValue = (literal: string): string => {
  if (literal.startsWith("`")) return literal.slice(1, -1)
  if (literal.startsWith("'")) return JSON.parse(`"${literal.slice(1, -1).replaceAll("\\'", "'").replaceAll("\"", "\\\"")}"`)
  return JSON.parse(literal)
}

/** A vector selector of a query: its metric name and the label names its matchers use. */
export interface Selector {
  readonly name: string
  readonly labels: ReadonlyArray<string>
}

/**
 * Every vector selector of a PromQL expression (`foo`, `foo{…}`, `{__name__="foo"}`, `{"foo"}`,
 * inside ranges, subqueries, functions, aggregations), in order of appearance. Throws on a
 * syntax error, and on a selector whose metric name is not one fixed name (`{__name__=~"…"}`):
 * a check of the names could not hold for it.
 */
export const selectors = (expr: string): ReadonlyArray<Selector> => {
  const found: Array<Selector> = []
  const problems: Array<string> = []
  const text = (node: { readonly from: number; readonly to: number }) => expr.slice(node.from, node.to)
  parser.parse(expr).iterate({
    enter: (ref) => {
      if (ref.type.isError) {
        problems.push(`syntax error at ${ref.from}: ${JSON.stringify(expr.slice(Math.max(0, ref.from - 20), ref.from + 20))}`)
        return false
      }
      if (ref.name !== "VectorSelector") return true
      const node = ref.node
      const matchers = node.getChild("LabelMatchers")
      let name: string | undefined
      const labels: Array<string> = []
      const identifier = node.getChild("Identifier")
      if (identifier !== null) name = text(identifier)
      // `{"foo", …}`: the metric name as a quoted string among the matchers.
      const quotedName = matchers?.getChild("QuotedLabelName")
      if (quotedName !== null && quotedName !== undefined) name = stringValue(text(quotedName))
      for (const matcher of matchers?.getChildren("UnquotedLabelMatcher") ?? []) {
        const label = matcher.getChild("LabelName")
        if (label === null) continue
        if (text(label) !== "__name__") {
          labels.push(text(label))
          continue
        }
        const exact = matcher.getChild("MatchOp")?.getChild("EqlSingle")
        const value = matcher.getChild("StringLiteral")
        if (exact !== null && exact !== undefined && value !== null) name = stringValue(text(value))
        else problems.push(`no fixed metric name in ${JSON.stringify(text(node))}`)
      }
      for (const matcher of matchers?.getChildren("QuotedLabelMatcher") ?? []) {
        const label = matcher.getChild("QuotedLabelName")
        if (label !== null) labels.push(stringValue(text(label)))
      }
      if (name === undefined) problems.push(`no fixed metric name in ${JSON.stringify(text(node))}`)
      else found.push({ name, labels })
      return false
    }
  })
  if (problems.length > 0) throw new Error(`PromQL ${JSON.stringify(expr)}: ${[...new Set(problems)].join("; ")}`)
  return found
}

/** The metric names an expression selects (see `selectors`), in order of appearance, without repeats. */
export const metricNames = (expr: string): ReadonlyArray<string> => [...new Set(selectors(expr).map((s) => s.name))]

/** Where a query comes from, for messages. */
export interface SourcedQuery {
  readonly source: string
  readonly expr: string
}

/** A dashboard file's parsed JSON. */
export interface DashboardFile {
  readonly file: string
  readonly json: Record<string, unknown>
}

export const dashboardFiles = (): ReadonlyArray<DashboardFile> =>
  readdirSync(DASHBOARDS_DIR).filter((f) => f.endsWith(".json")).sort().map((file) => ({
    file,
    json: record(JSON.parse(readFileSync(join(DASHBOARDS_DIR, file), "utf8")))
  }))

/** `value` if it is an array, else none (an optional list). */
const optionalList = (value: unknown): ReadonlyArray<unknown> => Array.isArray(value) ? value : []

/** Every panel of a dashboard, the panels nested in (collapsed) rows included. */
export const panelsOf = (dashboard: Record<string, unknown>): ReadonlyArray<Record<string, unknown>> =>
  list(dashboard["panels"]).map(record).flatMap((panel) => [panel, ...optionalList(panel["panels"]).map(record)])

/** `label_values(<selector>, label)` of a query variable: the selector, as PromQL. */
const LABEL_VALUES = /^\s*label_values\(\s*(.+?)\s*,\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$/

/**
 * Every PromQL query of a dashboard: each panel target's `expr` and each query variable's
 * `label_values` selector (Grafana's interval variables substituted).
 */
export const dashboardQueries = ({ file, json }: DashboardFile): ReadonlyArray<SourcedQuery> => {
  const panelQueries = panelsOf(json).flatMap((panel) =>
    optionalList(panel["targets"]).map(record).filter((t) => typeof t["expr"] === "string").map((target) => ({
      source: `${file} panel "${String(panel["title"])}" target ${String(target["refId"])}`,
      expr: withGrafanaVariables(String(target["expr"]))
    }))
  )
  const variableQueries = list(record(json["templating"])["list"]).map(record).filter((v) => v["type"] === "query").map((variable) => {
    const query = record(variable["query"])["query"] ?? variable["query"]
    const selector = LABEL_VALUES.exec(String(query))?.[1]
    if (selector === undefined) throw new Error(`${file} variable ${String(variable["name"])}: not a label_values(selector, label) query: ${String(query)}`)
    return { source: `${file} variable ${String(variable["name"])}`, expr: withGrafanaVariables(selector) }
  })
  return [...panelQueries, ...variableQueries]
}

/** A rule of a Prometheus rule file. */
export interface AlertRule {
  readonly group: string
  readonly alert: string
  readonly expr: string
  readonly for: string | undefined
  readonly labels: Readonly<Record<string, string>>
  readonly annotations: Readonly<Record<string, string>>
}

/** The string-valued entries of a YAML mapping (labels, annotations). */
const strings = (value: unknown): Record<string, string> =>
  Object.fromEntries(Object.entries(record(value)).filter((e): e is [string, string] => typeof e[1] === "string"))

export const readYaml = (path: string): Record<string, unknown> => record(parseYaml(readFileSync(path, "utf8")))

/** The alerting rules of a rule file (recording rules have `record` instead of `alert`). */
export const alertRules = (path: string): ReadonlyArray<AlertRule> =>
  list(readYaml(path)["groups"]).map(record).flatMap((group) =>
    list(group["rules"]).map(record).map((rule) => ({
      group: String(group["name"]),
      alert: String(rule["alert"] ?? rule["record"]),
      expr: String(rule["expr"]),
      for: typeof rule["for"] === "string" ? rule["for"] : undefined,
      labels: strings(rule["labels"]),
      annotations: strings(rule["annotations"])
    }))
  )

/** Runs promtool (Debian package `prometheus`) in `cwd`. */
export const promtool = (cwd: string, ...args: ReadonlyArray<string>): { readonly status: number; readonly output: string } => {
  const result = spawnSync("promtool", args, { cwd, encoding: "utf8" })
  if (result.error !== undefined) return { status: -1, output: `promtool not runnable: ${result.error.message}` }
  return { status: result.status ?? -1, output: `${result.stdout}${result.stderr}` }
}

const HISTOGRAM_SUFFIXES = ["_bucket", "_sum", "_count"]
const SUMMARY_SUFFIXES = ["_sum", "_count"]

/** What a Prometheus text exposition exports. */
export interface Exposition {
  /**
   * The series names: each family named by a HELP or TYPE line (with `_bucket`, `_sum`,
   * `_count` for a histogram, `_sum`, `_count` for a summary) and each sample's name.
   */
  readonly names: ReadonlySet<string>
  /** The label names seen on the samples of each series name (only names with samples). */
  readonly labels: ReadonlyMap<string, ReadonlySet<string>>
}

export const readExposition = (text: string): Exposition => {
  const names = new Set<string>()
  const labels = new Map<string, Set<string>>()
  for (const line of text.split("\n")) {
    const meta = /^#\s+(HELP|TYPE)\s+([A-Za-z_:][A-Za-z0-9_:]*)(?:\s+(\S+))?/.exec(line)
    if (meta !== null) {
      const [, kind, name = "", type] = meta
      names.add(name)
      if (kind === "TYPE" && type === "histogram") {
        for (const s of HISTOGRAM_SUFFIXES) names.add(`${name}${s}`)
      }
      if (kind === "TYPE" && type === "summary") {
        for (const s of SUMMARY_SUFFIXES) names.add(`${name}${s}`)
      }
      continue
    }
    const sample = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s/.exec(line)
    if (sample?.[1] === undefined) continue
    names.add(sample[1])
    const seen = labels.get(sample[1]) ?? new Set<string>()
    labels.set(sample[1], seen)
    for (const [, label] of (sample[2] ?? "").matchAll(/([A-Za-z_][A-Za-z0-9_]*)="(?:[^"\\]|\\.)*"/g)) {
      if (label !== undefined) seen.add(label)
    }
  }
  return { names, labels }
}

/** The series names an exposition exports (see `Exposition.names`). */
export const exportedNames = (text: string): ReadonlySet<string> => readExposition(text).names

/** The queries naming a metric `exported` lacks, as `metric (where)` lines; [] when every name is exported. */
export const unexported = (queries: ReadonlyArray<SourcedQuery>, exported: ReadonlySet<string>): ReadonlyArray<string> =>
  queries.flatMap(({ source, expr }) => metricNames(expr).filter((name) => !exported.has(name)).map((name) => `${name} (${source})`))

/** Labels every series has once Prometheus scrapes it (target labels), not the exposition. */
const TARGET_LABELS = new Set(["job", "instance"])

/**
 * Label matchers on labels the metric's samples do not have, as `metric{label} (where)` lines.
 * A metric without samples in the exposition (a labelled series never set) is not judged.
 */
export const unknownLabels = (queries: ReadonlyArray<SourcedQuery>, exposition: Exposition): ReadonlyArray<string> =>
  queries.flatMap(({ source, expr }) =>
    selectors(expr).flatMap(({ name, labels }) => {
      const seen = exposition.labels.get(name)
      if (seen === undefined) return []
      return labels.filter((label) => !TARGET_LABELS.has(label) && !seen.has(label)).map((label) => `${name}{${label}} (${source})`)
    })
  )
