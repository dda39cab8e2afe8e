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

export const RtpParameters = Schema.Struct({
  mid: Schema.optionalKey(Name(32)),
  codecs: list(RtpCodecParameters, 16).check(Schema.isMinLength(1)),
  headerExtensions: Schema.optionalKey(list(
    Schema.Struct({
      uri: Name(256),
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
/** The SRTP crypto suites mediasoup 3.8 supports (RFC 4568 names; ffmpeg's `-srtp_out_suite` takes the same). */
export const SrtpCryptoSuite = Schema.Literals(["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"])

/** SDES keying (RFC 4568): base64 of the 30-byte master key (16) and salt (14), as ffmpeg's `-srtp_out_params`. */
export const SrtpParameters = Schema.Struct({
  cryptoSuite: SrtpCryptoSuite,
  keyBase64: Schema.String.check(Schema.isPattern(/^[A-Za-z0-9+/]{40}$/, { expected: "base64 of a 30-byte key and salt (40 characters)" }))
})
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
