import { fileURLToPath } from "node:url"
import { api, field, MEDIA_ENV, type SentRange, untilExit } from "./ingest-rig.ts"
import { freePort, spawnNode, stop, waitForOk } from "./support.ts"

/** bench/audio-baseline-server.ts, running. */
export interface BaselineServer {
  readonly base: string
  readonly pid: number
  /** Distinct chunk sequences it decoded or parsed in each range, summed (as RemoteFakeAsr.count for the service). */
  readonly count: (ranges: ReadonlyArray<SentRange>) => Promise<number>
}

/**
 * Runs `use` against the baseline server, started with the service's media environment (`media`
 * overriding it) and writing to the ASR gateway at `asrUrl`, if given.
 */
export const withBaselineServer = async <A>(
  use: (server: BaselineServer) => Promise<A>,
  asrUrl?: string,
  media: Readonly<Record<string, string>> = {}
): Promise<A> => {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const env = { ...MEDIA_ENV, ...media, PORT: String(port), ...(asrUrl === undefined ? {} : { ASR_GATEWAY_URL: asrUrl }) }
  const child = spawnNode([fileURLToPath(new URL("./audio-baseline-server.ts", import.meta.url))], env)
  try {
    await untilExit(child, waitForOk(`${base}/ready`, 30_000))
    const count = async (ranges: ReadonlyArray<SentRange>) => Number(field(await api(base, "POST", "/bench/count", { ranges }, {}, 200), "received"))
    return await use({ base, pid: child.pid ?? 0, count })
  } finally {
    await stop(child)
  }
}
