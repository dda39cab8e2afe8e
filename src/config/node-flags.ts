/**
 * How the service's Node process starts: `npm start`, the image's CMD, and every test and
 * benchmark that spawns `src/main.ts` pass exactly these flags and this environment (a unit test
 * holds package.json and the Dockerfile to them). They must be on the command line (Node refuses
 * these V8 flags in NODE_OPTIONS): V8 sizes its heap at start-up, and `v8.setFlagsFromString`
 * afterwards does not change it; and V8's flags key the compile cache, which a flag changed at run
 * time invalidates.
 *
 * `--max-semi-space-size=16` (MB; the default on a 64-bit machine with a 4 GB heap limit is larger):
 * V8 starts a full mark-compact as soon as the old generation's room to its limit is smaller than
 * the young generation, and with the service's ~65 MB heap under steady audio load that held for a
 * larger young generation: a mark-compact every ~0.6 s, each ~40-50 ms of the main thread. The
 * figures (`bench/audio-ingest`, 8/16/32 MB against the default) are in the README, "Node flags".
 *
 * `--heap-growing-percent=50`: the old generation's next limit is 1.5 x what a full GC left live,
 * instead of a factor V8 picks per collection from its GC and mutator speeds. With the picked
 * factor about one service process in three (16 side-by-side pairs, `bench/audio-ingest` WAV sink,
 * N=50) settled on a small one and ran the rule above for its whole life: its main thread at
 * 26-28 % of a core against 17-23 %, in a profile ~25x the GC time (1.42 s against 0.05-0.06 s over
 * 29 s of load). With the fixed factor, 8 pairs of 8 ran cheap. Figures: README, "Node flags".
 *
 * `--no-allocation-site-pretenuring`: V8 decides per allocation site whether to allocate its
 * objects straight in the old generation, from how many of them survived the collections seen so
 * far. Start-up builds hundreds of long-lived contexts, headers and responses through the same
 * effect/node sites that every request then uses, so those sites ended up pretenured: each
 * request's short-lived objects (~0.6 KB) went to the old generation, scavenges slowed ~8x and the
 * heap grew until a full GC. Without it they die young. No effect on observable behaviour.
 */
export const NODE_FLAGS: ReadonlyArray<string> = ["--max-semi-space-size=16", "--heap-growing-percent=50", "--no-allocation-site-pretenuring"]

/**
 * Node's compile cache (relative to the package root, where npm runs scripts): each module's
 * type-stripped source and V8 code cache, keyed by content, Node version, V8 flags and user. On a
 * filled cache the service neither loads Node's TypeScript stripper (amaro) nor compiles from
 * source: `/health` answers after 1.4-2.3 s instead of 2.2-3.2 s, idle RSS ~7 MiB lower. Node
 * writes it as a process exits (so `npm start` fills it on its first run); the image fills it at
 * build time (`scripts/warm-compile-cache.ts`). Entries are written atomically, so processes
 * sharing it are safe, and a cache that cannot be read or written is skipped silently.
 */
export const COMPILE_CACHE_DIR = "node_modules/.cache/node-compile-cache"

/** The environment the service's process starts with (beside the caller's own). */
export const NODE_ENV_VARS: Readonly<Record<string, string>> = { NODE_COMPILE_CACHE: COMPILE_CACHE_DIR }

/** `node` arguments and environment for a process started as the service is: NODE_FLAGS before `args`, NODE_ENV_VARS over the caller's environment, `env` over both. */
export const asServiceNode = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}) => ({
  args: [...NODE_FLAGS, ...args],
  env: { ...process.env, ...NODE_ENV_VARS, ...env }
})
