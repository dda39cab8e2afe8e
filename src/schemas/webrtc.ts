import { Schema } from "effect"
import { HttpApiError } from "effect/http-api"

/** WebRTC / RTP signaling shapes (mediasoup's), decoded at the HTTP edge; a bad field is a 400 naming it. */

const Int = (minimum: number, maximum: number) => Schema.Int.check(Schema.isBetween({ minimum, maximum }))
const Name = (max: number) => Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(max))
const Params = Schema.Record(Schema.String.check(Schema.isMaxLength(64)), Schema.Union([Schema.String.check(Schema.isMaxLength(256)), Schema.Number]))
const list = <S extends Schema.Top>(item: S, max: number) => Schema.mutable(Schema.Array(item).check(Schema.isMaxLength(max)))

export const RtpCodecParameters = Schema.Struct({
  mimeType: Schema.String.check(Schema.isPattern(/^(audio|video)\/[A-Za-z0-9._-]{1,32}$/)),
  payloadType: Int(0, 127),
  clockRate: Int(1, 1_000_000),
  channels: Schema.optionalKey(Int(1, 8)),
  parameters: Schema.optionalKey(Params),
  rtcpFeedback: Schema.optionalKey(list(Schema.Struct({ type: Name(32), parameter: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(32))) }), 32))
})

/**
 * The RTP header extensions mediasoup knows (it refuses any other URI): the AIC element's URI is
 * not among them, it is added after mediasoup. An unknown URI is a 400 naming the field.
 */
export const RTP_HEADER_EXTENSION_URIS = [
  "urn:ietf:params:rtp-hdrext:sdes:mid",
  "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
  "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
  "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
  "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
  "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
  "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension",
  "urn:3gpp:video-orientation",
  "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time",
  "urn:ietf:params:rtp-hdrext:toffset",
  "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
  "urn:mediasoup:params:rtp-hdrext:packet-id"
] as const

export const RtpParameters = Schema.Struct({
  mid: Schema.optionalKey(Name(32)),
  codecs: list(RtpCodecParameters, 16).check(Schema.isMinLength(1)),
  headerExtensions: Schema.optionalKey(list(
    Schema.Struct({
      uri: Schema.Literals(RTP_HEADER_EXTENSION_URIS),
      id: Int(1, 255),
      encrypt: Schema.optionalKey(Schema.Boolean),
      parameters: Schema.optionalKey(Params)
    }),
    32
  )),
  encodings: Schema.optionalKey(list(
    Schema.Struct({
      ssrc: Schema.optionalKey(Int(0, 0xffff_ffff)),
      rid: Schema.optionalKey(Name(32)),
      codecPayloadType: Schema.optionalKey(Int(0, 127)),
      rtx: Schema.optionalKey(Schema.Struct({ ssrc: Int(0, 0xffff_ffff) })),
      dtx: Schema.optionalKey(Schema.Boolean),
      scalabilityMode: Schema.optionalKey(Name(16)),
      scaleResolutionDownBy: Schema.optionalKey(Schema.Number.check(Schema.isGreaterThanOrEqualTo(1))),
      maxBitrate: Schema.optionalKey(Int(1, 1_000_000_000))
    }),
    8
  )),
  rtcp: Schema.optionalKey(Schema.Struct({
    cname: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(256))),
    reducedSize: Schema.optionalKey(Schema.Boolean),
    mux: Schema.optionalKey(Schema.Boolean)
  }))
})
export type RtpParameters = typeof RtpParameters.Type

export const DtlsParameters = Schema.Struct({
  role: Schema.optionalKey(Schema.Literals(["auto", "client", "server"])),
  fingerprints: list(
    Schema.Struct({
      algorithm: Schema.Literals(["sha-1", "sha-224", "sha-256", "sha-384", "sha-512"]),
      value: Schema.String.check(Schema.isPattern(/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){15,63}$/))
    }),
    8
  ).check(Schema.isMinLength(1))
})

export type DtlsParameters = typeof DtlsParameters.Type

export const SctpStreamParameters = Schema.Struct({
  streamId: Int(0, 65535),
  ordered: Schema.optionalKey(Schema.Boolean),
  maxPacketLifeTime: Schema.optionalKey(Int(0, 65535)),
  maxRetransmits: Schema.optionalKey(Int(0, 65535))
})

const AppData = Schema.Record(
  Schema.String.check(Schema.isMaxLength(64)),
  Schema.Union([Schema.String.check(Schema.isMaxLength(256)), Schema.Number, Schema.Boolean])
)
  .check(Schema.isMaxProperties(16))

// ---- requests ---------------------------------------------------------------------------------

export const ConnectTransport = Schema.Struct({ dtlsParameters: DtlsParameters })
/** Audio goes to the audio path; video to the AIC pipeline when the session has it on. */
export const Produce = Schema.Struct({ kind: Schema.Literals(["audio", "video"]), rtpParameters: RtpParameters, appData: Schema.optionalKey(AppData) })
export type Produce = typeof Produce.Type
export const ProduceData = Schema.Struct({
  sctpStreamParameters: SctpStreamParameters,
  label: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(256))),
  protocol: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(256))),
  appData: Schema.optionalKey(AppData)
})
export type ProduceData = typeof ProduceData.Type
/**
 * The SRTP crypto suites mediasoup supports (RFC 4568 / RFC 7714 names; ffmpeg's `-srtp_out_suite`
 * takes the AES_CM ones), with the bytes of master key + salt each needs.
 */
const SRTP_KEY_BYTES = { AES_CM_128_HMAC_SHA1_80: 30, AES_CM_128_HMAC_SHA1_32: 30, AEAD_AES_128_GCM: 28, AEAD_AES_256_GCM: 44 } as const
export const SrtpCryptoSuite = Schema.Literals(["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AEAD_AES_128_GCM", "AEAD_AES_256_GCM"])

const keyFitsSuite = Schema.makeFilter<{ readonly cryptoSuite: typeof SrtpCryptoSuite.Type; readonly keyBase64: string }>(
  (p) => atob(p.keyBase64).length === SRTP_KEY_BYTES[p.cryptoSuite],
  {
    expected: "keyBase64 of the suite's master key + salt (30 bytes for AES_CM, 28 for AEAD_AES_128_GCM, 44 for AEAD_AES_256_GCM)",
    message: "keyBase64 must hold the suite's master key + salt: 30 bytes for AES_CM_*, 28 for AEAD_AES_128_GCM, 44 for AEAD_AES_256_GCM"
  }
)

/** SDES keying (RFC 4568): base64 of the master key and salt, as ffmpeg's `-srtp_out_params`. */
export const SrtpParameters = Schema.Struct({
  cryptoSuite: SrtpCryptoSuite,
  keyBase64: Schema.String.check(
    Schema.isPattern(/^(?:[A-Za-z0-9+/]{4}){9,14}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, { expected: "base64 (36-60 characters)" })
  )
}).check(keyFitsSuite)
export type SrtpParameters = typeof SrtpParameters.Type

export const CreatePlainTransport = Schema.Struct({
  rtcpMux: Schema.optionalKey(Schema.Boolean),
  comedia: Schema.Literal(true),
  enableSrtp: Schema.optionalKey(Schema.Boolean),
  srtpCryptoSuite: Schema.optionalKey(SrtpCryptoSuite)
})
export type CreatePlainTransport = typeof CreatePlainTransport.Type

/**
 * The sender's side of a plain transport: its SRTP keying (required when the transport was made
 * with `enableSrtp`: the server decrypts with it). The transport is comedia, so the sender's
 * address is learnt from its first packet and no address is taken here.
 */
export const ConnectPlainTransport = Schema.Struct({ srtpParameters: SrtpParameters })
export type ConnectPlainTransport = typeof ConnectPlainTransport.Type

// ---- responses (mediasoup's own objects, passed through) ---------------------------------------

const Json = Schema.Unknown
export const IceServer = Schema.Struct({
  urls: Schema.Array(Schema.String),
  username: Schema.optionalKey(Schema.String),
  credential: Schema.optionalKey(Schema.String)
})
export type IceServer = typeof IceServer.Type

export const WebRtcTransportInfo = Schema.Struct({
  id: Schema.String,
  iceParameters: Json,
  iceCandidates: Schema.Array(Json),
  dtlsParameters: Json,
  sctpParameters: Schema.optionalKey(Json),
  iceServers: Schema.Array(IceServer)
})
export type WebRtcTransportInfo = typeof WebRtcTransportInfo.Type
export const PlainTransportInfo = Schema.Struct({
  id: Schema.String,
  ip: Schema.String,
  port: Schema.Number,
  rtcpPort: Schema.optionalKey(Schema.Number),
  srtpParameters: Schema.optionalKey(Json)
})
export type PlainTransportInfo = typeof PlainTransportInfo.Type
export const RtpCapabilities = Schema.Struct({ codecs: Schema.Array(Json), headerExtensions: Schema.Array(Json) })
export const ProducerCreated = Schema.Struct({ producerId: Schema.String })
export const DataProducerCreated = Schema.Struct({ dataProducerId: Schema.String })
/** What mediasoup-client's `recvTransport.consumeData(...)` takes to open the session's server events channel. */
export const EventsChannel = Schema.Struct({
  id: Schema.String,
  dataProducerId: Schema.String,
  sctpStreamParameters: Json,
  label: Schema.String,
  protocol: Schema.String
})
export type EventsChannel = typeof EventsChannel.Type
export const IceRestarted = Schema.Struct({ iceParameters: Json })
export const TransportStats = Schema.Struct({
  transport: Schema.Array(Json),
  producers: Schema.Array(Schema.Struct({ id: Schema.String, kind: Schema.String, stats: Schema.Array(Json) }))
})
export type TransportStats = typeof TransportStats.Type

// ---- errors ---------------------------------------------------------------------------------

/** No such transport / producer in this session (or the session has no media yet). */
export class MediaNotFound extends HttpApiError.Problem<MediaNotFound>()("MediaNotFound", {
  type: "about:blank",
  status: 404,
  title: "Not Found"
}, { detail: Schema.String }) {}

/** mediasoup refused the parameters (its message is the detail); nothing was created. */
export class MediaRejected extends HttpApiError.Problem<MediaRejected>()("MediaRejected", {
  type: "urn:auralink:problem:media-rejected",
  status: 400,
  title: "Bad Request"
}, { detail: Schema.String }) {}

export const mediaNotFound = (what: string, id: string) => new MediaNotFound({ detail: `No ${what} ${id} in this session` })
