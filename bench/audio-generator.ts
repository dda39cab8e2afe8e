// bench/audio-ingest's load generator, in a process of its own (forked with IPC) so that its CPU is
// measured apart from the bench's and from the server's: it opens audio sessions against the base
// URL it is given (the service or the baseline server, the same API) and streams every one of them
// from one paced sender; per measured window it reports what each stream sent, its own CPU and how
// late its sender ran.
import { Schema } from "effect"
import { type AudioPathName, captureMedia, openStream } from "./audio-streams.ts"
import { GeneratorReply, GeneratorRequest } from "./audio-generator-protocol.ts"
import { localLoad, startSender, type Stream } from "./ingest-rig.ts"

const decodeRequest = Schema.decodeUnknownSync(GeneratorRequest)
const reply = (message: GeneratorReply) => process.send?.(message)

const media = await captureMedia()
const streams: Array<Stream> = []
const sender = startSender(streams)
const load = localLoad(streams, sender.lateMs)

/** Opens the sessions `concurrency` at a time (as a few clients signaling at once would); each streams once it is open. */
const open = async (base: string, auth: Record<string, string>, paths: ReadonlyArray<AudioPathName>, concurrency: number): Promise<void> => {
  const pending = [...paths]
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let path = pending.shift(); path !== undefined; path = pending.shift()) streams.push(await openStream(path, base, auth, media))
  }))
}

const handle = async (request: GeneratorRequest): Promise<GeneratorReply> => {
  switch (request.type) {
    case "open":
      await open(request.base, request.auth, request.paths, request.concurrency)
      return { id: request.id }
    case "start":
      await load.start()
      return { id: request.id }
    case "end":
      return { id: request.id, window: await load.end() }
    case "close": {
      const closing = streams.splice(0)
      await Promise.all(closing.map((s) => s.close()))
      return { id: request.id }
    }
  }
}

process.on("message", (raw: unknown) => {
  const request = decodeRequest(raw)
  // With its cause: fetch's "fetch failed" alone does not say whether it was refused, reset or timed out.
  const described = (error: unknown) =>
    error instanceof Error && error.cause instanceof Error ? `${String(error)} (${error.cause.name}: ${error.cause.message})` : String(error)
  handle(request).then(reply, (error: unknown) => reply({ id: request.id, error: described(error) }))
})
process.on("disconnect", () => {
  sender.stop()
  media.socket.close()
  process.exit(0)
})
reply(media.templates.length === 0 ? { id: 0, error: "no Opus RTP packets captured" } : { id: 0, captured: media.templates.length })
