import { afterAll, assert, describe, it, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { list, record, request, signIn, str } from "../support/auth.ts"
import { FakeCommunicationService } from "../support/fake-communication-service.ts"
import { startedFake } from "../support/fake-server.ts"
import { startFakeAsr } from "../support/fake-asr.ts"
import { ffmpegOpusRtpArgs, runFfmpeg } from "../support/ffmpeg-rtp.ts"
import { Fake, fakeLiveKitLayer, liveKitEnv } from "../support/livekit.ts"
import { eventually, mediaServer, opusRtpParameters, startSession, user } from "../support/media.ts"
import {
  alertRules,
  dashboardFiles,
  dashboardQueries,
  DASHBOARDS_DIR,
  exportedNames,
  GRAFANA_DIR,
  metricNames,
  panelsOf,
  PROMETHEUS_DIR,
  promtool,
  readExposition,
  readYaml,
  selectors,
  type SourcedQuery,
  unexported,
  unknownLabels
} from "../support/monitoring.ts"
import { checkMetricsWithPromtool } from "../support/promtool.ts"
import { deleteKeys, REDIS_URL, runPrefix } from "../support/redis.ts"
import { startReferenceAiCore } from "../support/reference-ai-core.ts"

const ALERTS = join(PROMETHEUS_DIR, "alerts.yml")
const ALERT_TESTS = join(PROMETHEUS_DIR, "alerts.test.yml")
const DASHBOARDS = dashboardFiles()
const RULES = alertRules(ALERTS)

describe("the PromQL metric-name extractor", () => {
  it("names every selector of a query: plain, with matchers, in ranges and subqueries, by __name__ or quoted name", () => {
    assert.deepStrictEqual(
      metricNames(
        "histogram_quantile(0.95, sum by (le) (rate(a_seconds_bucket{job=\"x\"}[5m]))) / on() group_left sum(b_total offset 1m) + {__name__=\"c\"} and d[10m:1m] or {\"e.f\", g=\"h\"}"
      ),
      ["a_seconds_bucket", "b_total", "c", "d", "e.f"]
    )
  })

  it("a made-up metric is named, and the check against a real exposition reports it", () => {
    const query: SourcedQuery = { source: "made up", expr: "sum(rate(auralink_made_up_total[5m])) / sum(rate(process_cpu_seconds_total[5m]))" }
    assert.deepStrictEqual(metricNames(query.expr), ["auralink_made_up_total", "process_cpu_seconds_total"])
    const exposition = "# HELP process_cpu_seconds_total cpu\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1\n"
    assert.deepStrictEqual(unexported([query], exportedNames(exposition)), ["auralink_made_up_total (made up)"])
  })

  it("a histogram family exports its _bucket, _sum and _count series, HELP and TYPE alone count as exported", () => {
    const names = exportedNames("# HELP h_seconds h\n# TYPE h_seconds histogram\n# HELP g gauge\n# TYPE g gauge\n")
    for (const name of ["h_seconds", "h_seconds_bucket", "h_seconds_sum", "h_seconds_count", "g"]) assert.isTrue(names.has(name), name)
    assert.isFalse(names.has("g_bucket"))
  })

  it("a label matcher on a label the metric's samples lack is reported; job and instance, and metrics without samples, are not judged", () => {
    const exposition = readExposition([
      "# HELP auralink_circuit_breaker_state s",
      "# TYPE auralink_circuit_breaker_state gauge",
      "auralink_circuit_breaker_state{name=\"ai_core\"} 0",
      "# HELP quiet_total q",
      "# TYPE quiet_total counter",
      ""
    ].join("\n"))
    const queries: ReadonlyArray<SourcedQuery> = [
      { source: "wrong label", expr: "max by (breaker) (auralink_circuit_breaker_state{job=~\".+\",breaker=\"ai_core\"})" },
      { source: "right label", expr: "auralink_circuit_breaker_state{instance=\"a\",name=\"ai_core\"} == 2" },
      { source: "no samples", expr: "rate(quiet_total{reason=\"x\"}[5m])" }
    ]
    assert.deepStrictEqual(unknownLabels(queries, exposition), ["auralink_circuit_breaker_state{breaker} (wrong label)"])
    assert.deepStrictEqual(selectors("sum(rate(a{b=\"1\",c!~\"2\"}[5m])) / {__name__=\"d\",\"e.f\"=\"3\"}"), [
      { name: "a", labels: ["b", "c"] },
      { name: "d", labels: ["e.f"] }
    ])
  })

  it("a syntax error, or a selector without one fixed metric name, throws", () => {
    assert.throws(() => metricNames("sum(rate(x[5m])"), /syntax error/)
    assert.throws(() => metricNames("rate(x[$__rate_interval])"), /syntax error/)
    assert.throws(() => metricNames("{__name__=~\"auralink_.*\"}"), /no fixed metric name/)
  })
})

describe("Grafana dashboards (deploy/grafana)", () => {
  it("the five dashboards are there, each with a unique uid, a title and the datasource, job and instance variables", () => {
    assert.deepStrictEqual(
      DASHBOARDS.map((d) => d.file),
      ["auralink-aic.json", "auralink-audio.json", "auralink-cluster.json", "auralink-infrastructure.json", "auralink-rooms.json"]
    )
    assert.strictEqual(new Set(DASHBOARDS.map((d) => d.json["uid"])).size, DASHBOARDS.length)
    for (const { file, json } of DASHBOARDS) {
      assert.strictEqual(json["uid"], file.replace(/\.json$/, ""), file)
      assert.match(String(json["title"]), /^AuraLink \/ /, file)
      const variables = list(record(json["templating"])["list"]).map(record)
      assert.deepStrictEqual(variables.map((v) => v["name"]), ["datasource", "job", "instance"], file)
      assert.deepStrictEqual([variables[0]?.["type"], variables[0]?.["query"]], ["datasource", "prometheus"], file)
    }
  })

  it("every panel queries the templated Prometheus datasource, has a unique id and fits the 24-column grid", () => {
    for (const { file, json } of DASHBOARDS) {
      const panels = panelsOf(json)
      assert.isAbove(panels.filter((p) => p["type"] !== "row").length, 5, file)
      assert.strictEqual(new Set(panels.map((p) => p["id"])).size, panels.length, `${file}: panel ids`)
      for (const panel of panels) {
        const where = `${file} panel "${String(panel["title"])}"`
        const pos = record(panel["gridPos"])
        assert.isAtMost(Number(pos["x"]) + Number(pos["w"]), 24, where)
        if (panel["type"] === "row") continue
        const targets = list(panel["targets"]).map(record)
        assert.isNotEmpty(targets, where)
        for (const source of [panel["datasource"], ...targets.map((t) => t["datasource"])]) {
          assert.deepStrictEqual(source, { type: "prometheus", uid: "${datasource}" }, where)
        }
      }
    }
  })

  it("every query parses as PromQL and names at least one metric", () => {
    const queries = DASHBOARDS.flatMap(dashboardQueries)
    assert.isAbove(queries.length, 80)
    for (const q of queries) assert.isNotEmpty(metricNames(q.expr), q.source)
  })

  it("Prometheus's own parser accepts every query (promtool check rules on them as recording rules)", () => {
    const queries = DASHBOARDS.flatMap(dashboardQueries)
    const dir = mkdtempSync(join(tmpdir(), "auralink-dashboards-"))
    try {
      // JSON is YAML: one recording rule per query.
      const rules = { groups: [{ name: "dashboards", rules: queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: q.expr })) }] }
      writeFileSync(join(dir, "queries.yml"), JSON.stringify(rules))
      const result = promtool(dir, "check", "rules", "queries.yml")
      assert.strictEqual(result.status, 0, result.output)
      assert.include(result.output, `SUCCESS: ${queries.length} rules found`)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("the seed's panels are there: AIC, room sync and infrastructure name the metrics the seed lists", () => {
    const named = (file: string) => new Set(dashboardQueries(DASHBOARDS.find((d) => d.file === file) ?? assert.fail(file)).flatMap((q) => metricNames(q.expr)))
    const expect = {
      "auralink-aic.json": [
        "auralink_aic_frames_processed_total",
        "auralink_aic_frames_compressed_total",
        "auralink_aic_compression_ratio_bucket",
        "auralink_aic_bandwidth_saved_bytes",
        "auralink_aic_latency_seconds_bucket",
        "auralink_aic_fallbacks_total"
      ],
      "auralink-rooms.json": ["auralink_rooms_active", "auralink_participants", "auralink_sync_success_rate", "auralink_room_sync_duration_seconds_bucket"],
      "auralink-infrastructure.json": [
        "auralink_db_connections_active",
        "auralink_redis_connections_active",
        "auralink_circuit_breaker_state",
        "process_resident_memory_bytes",
        "process_cpu_user_seconds_total",
        "auralink_media_worker_restarts_total"
      ],
      "auralink-audio.json": [
        "auralink_audio_chunks_total",
        "auralink_audio_bytes_total",
        "auralink_audio_loss_total",
        "auralink_audio_concealed_total",
        "auralink_audio_server_latency_seconds_bucket",
        "auralink_asr_streams",
        "auralink_asr_transcripts_total",
        "auralink_asr_reconnects_total"
      ],
      "auralink-cluster.json": [
        "auralink_instance_sessions",
        "auralink_instance_capacity_sessions",
        "auralink_instance_load_ratio",
        "auralink_instance_draining",
        "auralink_admission_rejected_total",
        "auralink_cluster_instances",
        "auralink_cluster_redirects_total",
        "auralink_cluster_sessions_lost_total"
      ]
    }
    for (const [file, metrics] of Object.entries(expect)) {
      const names = named(file)
      for (const metric of metrics) assert.isTrue(names.has(metric), `${file} names ${metric}`)
    }
  })

  it("the provisioning file loads the dashboards folder from files", () => {
    const providers = list(readYaml(join(GRAFANA_DIR, "provisioning", "dashboards.yaml"))["providers"]).map(record)
    assert.strictEqual(providers.length, 1)
    const provider = providers[0] ?? {}
    assert.strictEqual(provider["type"], "file")
    assert.isString(record(provider["options"])["path"])
    assert.isTrue(existsSync(DASHBOARDS_DIR))
  })
})

describe("Prometheus alert rules (deploy/prometheus)", () => {
  it("promtool check rules accepts alerts.yml", () => {
    const result = promtool(PROMETHEUS_DIR, "check", "rules", "alerts.yml")
    assert.strictEqual(result.status, 0, result.output)
    assert.include(result.output, `SUCCESS: ${RULES.length} rules found`)
  })

  it("promtool test rules passes alerts.test.yml", () => {
    const result = promtool(PROMETHEUS_DIR, "test", "rules", "alerts.test.yml")
    assert.strictEqual(result.status, 0, result.output)
    assert.include(result.output, "SUCCESS")
  })

  it("the seed's alerts and issue 16's are there, each with for, a severity, a summary and a description", () => {
    assert.deepStrictEqual(RULES.map((r) => `${r.labels["severity"] ?? "(no severity)"} ${r.alert}`).sort(), [
      "critical AuralinkAicCompressionSuccessLow",
      "critical AuralinkAsrCircuitBreakerOpen",
      "critical AuralinkDatabasePoolExhausted",
      "critical AuralinkGrpcCircuitBreakerOpen",
      "critical AuralinkRedisConnectionFailure",
      "warning AuralinkAicCompressionLatencyHigh",
      "warning AuralinkInstanceCapacityHigh",
      "warning AuralinkMediaWorkerRestarts",
      "warning AuralinkParticipantCacheMissesHigh",
      "warning AuralinkRoomSyncSuccessLow",
      "warning AuralinkRtcPortsExhausted"
    ])
    for (const rule of RULES) {
      assert.match(rule.for ?? "", /^\d+[smh]$/, `${rule.alert}: for`)
      assert.isNotEmpty(rule.annotations["summary"] ?? "", `${rule.alert}: summary`)
      assert.isNotEmpty(rule.annotations["description"] ?? "", `${rule.alert}: description`)
      assert.isNotEmpty(metricNames(rule.expr), rule.alert)
    }
  })

  it("every alert has a unit test case where it fires and one where it does not", () => {
    const cases = list(readYaml(ALERT_TESTS)["tests"]).map(record).flatMap((t) => list(t["alert_rule_test"]).map(record))
    for (const rule of RULES) {
      const mine = cases.filter((c) => c["alertname"] === rule.alert)
      assert.isTrue(mine.some((c) => list(c["exp_alerts"]).length > 0), `${rule.alert} fires in a test`)
      assert.isTrue(mine.some((c) => list(c["exp_alerts"]).length === 0), `${rule.alert} stays quiet in a test`)
    }
  })
})

// ---------------------------------------------------------------------------------------------
// Every metric a dashboard or an alert names is exported by a running service with traffic.

const PREFIX = runPrefix()
const LIVEKIT_KEY = "monitoring-test-key"
const LIVEKIT_SECRET = "monitoring-test-secret-0123456789abcdef"
const COMMUNICATION_KEY = "monitoring-test-communication-key"

const asr = await startFakeAsr()
const aiCore = await startReferenceAiCore({ record: false })
afterAll(async () => {
  asr.stop()
  aiCore.stop()
  await deleteKeys(`${PREFIX}:*`)
})

class Communication extends Context.Service<Communication, FakeCommunicationService>()("test/MonitoringCommunication") {}

/** The service with every optional part on: Redis, the ASR gateway, the AI Core, LiveKit, the Communication Service. */
const Server = Layer.unwrap(Effect.gen(function*() {
  const livekit = yield* Fake
  const communication = yield* Communication
  return mediaServer({
    REDIS_URL,
    REDIS_KEY_PREFIX: `${PREFIX}:`,
    ASR_GATEWAY_URL: asr.url,
    AI_CORE_GRPC_URL: aiCore.url,
    ...liveKitEnv(livekit, LIVEKIT_KEY, LIVEKIT_SECRET),
    ROOM_SYNC_INTERVAL_MS: "300",
    COMMUNICATION_SERVICE_URL: communication.url,
    COMMUNICATION_SERVICE_API_KEY: COMMUNICATION_KEY,
    // Opus decoding on a worker thread: the decode thread series exist only then.
    AUDIO_DECODE_THREADS: "1"
  })
})).pipe(
  Layer.provideMerge(Layer.mergeAll(
    fakeLiveKitLayer(LIVEKIT_KEY, LIVEKIT_SECRET),
    Layer.effect(Communication, startedFake(() => new FakeCommunicationService({ apiKey: COMMUNICATION_KEY })))
  ))
)

/** A session of a new user whose plain transport ffmpeg feeds one second of Opus RTP. */
const audioSession = Effect.gen(function*() {
  const alice = yield* signIn(user("alice"))
  const id = yield* startSession(alice.headers)
  const plain = yield* request("POST", `/api/webrtc/${id}/plain-transports`, { comedia: true, rtcpMux: false }, alice.headers)
  assert.strictEqual(plain.status, 201, plain.text)
  const produced = yield* request(
    "POST",
    `/api/webrtc/${id}/plain-transports/${str(plain.json["id"])}/produce`,
    { kind: "audio", rtpParameters: opusRtpParameters() },
    alice.headers
  )
  assert.strictEqual(produced.status, 201, produced.text)
  const port = Number(plain.json["port"])
  const args = ffmpegOpusRtpArgs("127.0.0.1", port, { realtime: true, payloadType: 100, tones: [440, 880], toneMs: 500 })
  args.splice(args.length - 3, 3, "-ssrc", "1111", "-f", "rtp", `rtp://127.0.0.1:${port}?rtcpport=${Number(plain.json["rtcpPort"])}`)
  yield* Effect.promise(() => runFfmpeg(args))
  yield* eventually(Effect.sync(() => asr.chunks(id).length >= 25), "half a second of audio at the ASR gateway")
  return id
})

const scrape = Effect.map(request("GET", "/metrics"), (res) => {
  assert.strictEqual(res.status, 200)
  return res.text
})

/** The value of a sample line `name{…} value` (first match), or undefined. */
const sampleValue = (exposition: string, line: RegExp): number | undefined => {
  const match = exposition.split("\n").find((l) => line.test(l))
  return match === undefined ? undefined : Number(match.slice(match.lastIndexOf(" ") + 1))
}

layer(Server, { timeout: 90_000, excludeTestServices: true })("every metric the dashboards and alerts name is exported", (it) => {
  it.effect("after a session with audio, a room sync and an AuraID lookup, /metrics has every metric named", () =>
    Effect.gen(function*() {
      // Traffic: a room with a participant in LiveKit (synced), a session with audio to the ASR gateway.
      const livekit = yield* Fake
      const room = `room-${PREFIX}`
      yield* Effect.promise(() => livekit.addRoom(room))
      yield* Effect.promise(() => livekit.join(room, `aura:someone-${PREFIX}`))
      const id = yield* audioSession
      yield* eventually(
        Effect.map(scrape, (text) =>
          (sampleValue(text, /^auralink_room_syncs_total\{result="success"\}/) ?? 0) > 0 && (sampleValue(text, /^auralink_participants /) ?? 0) >= 1),
        "a room sync that saw the participant"
      )
      const reader = yield* signIn(user("reader"))
      const rooms = yield* request("GET", `/api/rooms/${room}`, undefined, reader.headers)
      assert.strictEqual(rooms.status, 200, rooms.text)
      const exposition = yield* scrape
      // The traffic shows in the series the dashboards plot.
      assert.isAbove(sampleValue(exposition, /^auralink_audio_chunks_total\{path="rtp"\}/) ?? 0, 0, "audio chunks")
      assert.isAbove(sampleValue(exposition, /^auralink_asr_chunks_sent_total /) ?? 0, 0, "ASR chunks")
      assert.isAbove(sampleValue(exposition, /^auralink_sessions\{state="active"\}/) ?? 0, 0, `session ${id} active`)
      assert.isAbove(sampleValue(exposition, /^auralink_auraid_upstream_calls_total\{/) ?? 0, 0, "AuraID lookups")
      const promtoolCheck = checkMetricsWithPromtool(exposition)
      assert.strictEqual(promtoolCheck.status, 0, promtoolCheck.output)

      const exported = readExposition(exposition)
      const queries: ReadonlyArray<SourcedQuery> = [
        ...DASHBOARDS.flatMap(dashboardQueries),
        ...RULES.map((rule) => ({ source: `alerts.yml ${rule.alert}`, expr: rule.expr }))
      ]
      // Every metric named is exported, and the label names matched on are the metric's (where its samples show them).
      const missing = unexported(queries, exported.names)
      const mislabelled = unknownLabels(queries, exported)
      assert.deepStrictEqual(
        {
          notExported: [
            ...new Set(missing.map((line) =>
              line.slice(0, line.indexOf(" "))
            ))
          ].sort(),
          mislabelled
        },
        { notExported: [], mislabelled: [] },
        `named but not exported:\n${missing.join("\n")}`
      )
    }))
})
