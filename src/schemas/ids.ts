import { Schema } from "effect"

// The shape Postgres `uuid` accepts (any version), as the store checked before.
const uuid = Schema.String.check(Schema.isGUID({ expected: "a UUID", message: "must be a UUID" }))
// mediasoup makes its ids UUIDs, but any unknown transport id is a 404 (MediaNotFound): only a bound is checked.
const opaque = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(64))

/** A session's id (Postgres `uuid`). */
export const SessionId = uuid.pipe(Schema.brand("SessionId"))
export type SessionId = typeof SessionId.Type

/** A registered device's id (Postgres `uuid`). */
export const DeviceId = uuid.pipe(Schema.brand("DeviceId"))
export type DeviceId = typeof DeviceId.Type

/** A mediasoup transport's id, as the transport create answer gave it. */
export const TransportId = opaque.pipe(Schema.brand("TransportId"))
export type TransportId = typeof TransportId.Type

/** A mediasoup producer's id. */
export const ProducerId = opaque.pipe(Schema.brand("ProducerId"))
export type ProducerId = typeof ProducerId.Type

/** A mediasoup data producer's id. */
export const DataProducerId = opaque.pipe(Schema.brand("DataProducerId"))
export type DataProducerId = typeof DataProducerId.Type

/** No control characters (C0, DEL, C1): names end up in keys, logs and URLs. */
const isControl = (code: number) => code < 0x20 || (code >= 0x7f && code <= 0x9f)
const printable = Schema.makeFilter<string>((s) => s.isWellFormed() && ![...s].some((c) => isControl(c.codePointAt(0) ?? 0)), {
  expected: "text without control characters or unpaired surrogates",
  message: "must not contain control characters or unpaired UTF-16 surrogates"
})

/** A LiveKit room's name (LiveKit allows any string; bounded here). */
export const RoomName = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(256), printable).pipe(Schema.brand("RoomName"))
export type RoomName = typeof RoomName.Type

/** A participant's identity, as LiveKit knows it (for this service's devices: their user id). */
export const ParticipantIdentity = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(256), printable).pipe(Schema.brand("ParticipantIdentity"))
export type ParticipantIdentity = typeof ParticipantIdentity.Type
