/**
 * The V8 flags the service's Node process starts with: `npm start`, the image's CMD, and every test
 * and benchmark that spawns `src/main.ts` pass exactly these (a unit test holds package.json and the
 * Dockerfile to them). They must be on the command line (or NODE_OPTIONS): V8 sizes its heap at
 * start-up, and `v8.setFlagsFromString` afterwards does not change it.
 *
 * `--max-semi-space-size=16` (MB; the default on a 64-bit machine with a 4 GB heap limit is larger):
 * V8 starts a full mark-compact as soon as the old generation's room to its limit is smaller than
 * the young generation, and with the service's ~65 MB heap under steady audio load that held for a
 * larger young generation: a mark-compact every ~0.6 s, each ~40-50 ms of the main thread. The
 * figures (`bench/audio-ingest`, 8/16/32 MB against the default) are in the README, "Node flags".
 */
export const NODE_FLAGS: ReadonlyArray<string> = ["--max-semi-space-size=16"]
