import { Context, Effect, Layer, Option } from "effect"
import { makeAsrGateway } from "./AsrGateway.ts"
import type { AudioSinkService } from "./asr/types.ts"
import { AppConfig } from "./Config.ts"
import { makeRecordingSink } from "./RecordingSink.ts"

export { AudioSinkClosed, AudioSinkError, type SinkAudioChunk, Transcript } from "../schemas/asr.ts"
export type { AudioSinkService, AudioSinkStream } from "./asr/types.ts"

/**
 * Where session audio goes: the ASR gateway (ASR_GATEWAY_URL set) or, the embedded default, WAV
 * recordings. Both open one stream per audio producer (`openStream({ sessionId, producerId, path })`),
 * so the audio path does not care which is live.
 */
export class AudioSink extends Context.Service<AudioSink, AudioSinkService>()("auralink/AudioSink") {
  /** The ASR gateway client at `url` (needs AppConfig, Health, Metrics). */
  static readonly layerAsrGateway = (url: string) => Layer.effect(AudioSink, makeAsrGateway(url))
  /** WAV files under `<DATA_DIR>/recordings` (needs AppConfig, Health). */
  static readonly layerRecording = Layer.effect(AudioSink, makeRecordingSink)
  /** Picks by config: ASR gateway when ASR_GATEWAY_URL is set, else the recording sink. */
  static readonly layer = Layer.unwrap(Effect.map(AppConfig, (settings) =>
    Option.match(settings.asr.gatewayUrl, {
      onNone: () => AudioSink.layerRecording,
      onSome: (url) => AudioSink.layerAsrGateway(url)
    })))
}
