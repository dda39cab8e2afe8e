import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from "node:crypto"
import type { RTCPeerConnection } from "werift"

// The load generator's cheaper DTLS records: werift seals each record with `createCipheriv` on the
// raw key Buffer, which node:crypto imports again on every call (Node 24: ~15 us a 1.3 kB record
// against ~8 us with a KeyObject; in a profile of the generator at 100 data-channel sessions the
// record crypto was a third of its busy time). This imports the connection's two AES-GCM keys once
// and seals/opens records the way werift's AEADCipher does (RFC 5288: implicit nonce from the key
// block, explicit 8-byte nonce = epoch + sequence number, the record header as AAD). Only the
// generator's peers use it: what they put on the wire is unchanged.

type Aead = NonNullable<NonNullable<RTCPeerConnection["sctpTransport"]>["dtlsTransport"]["dtls"]>["cipher"]["cipher"]

/** `key` imported once, or undefined before the handshake derived it. */
const imported = (key: Buffer | undefined): KeyObject | undefined => (key === undefined ? undefined : createSecretKey(key))

/**
 * Replaces the record sealing of `pc`'s DTLS connection (connected: its keys derived) with one that
 * imports its keys once; throws when there is none yet, rather than leave the peer as it was unseen.
 */
export const importRecordKeys = (pc: RTCPeerConnection): void => {
  const aead: Aead | undefined = pc.sctpTransport?.dtlsTransport.dtls?.cipher.cipher
  const algorithm = aead?.blockAlgorithm
  const clientKey = imported(aead?.clientWriteKey)
  const serverKey = imported(aead?.serverWriteKey)
  const clientNonce = aead?.clientNonce
  const serverNonce = aead?.serverNonce
  if (
    aead === undefined || algorithm === undefined || clientKey === undefined || serverKey === undefined || clientNonce === undefined ||
    serverNonce === undefined
  ) throw new Error("the peer has no DTLS record keys yet (not connected)")
  const CLIENT = 1 // werift's SessionType.CLIENT
  aead.encrypt = (type, data, header) => {
    const iv = type === CLIENT ? clientNonce : serverNonce
    iv.writeUInt16BE(header.epoch, aead.nonceImplicitLength)
    iv.writeUIntBE(header.sequenceNumber, aead.nonceImplicitLength + 2, 6)
    const cipher = createCipheriv(algorithm, type === CLIENT ? clientKey : serverKey, iv, { authTagLength: aead.authTagLength })
    cipher.setAAD(aead.encodeAdditionalBuffer(header, data.length), { plaintextLength: data.length })
    const sealed = cipher.update(data)
    return Buffer.concat([iv.subarray(aead.nonceImplicitLength), sealed, cipher.final(), cipher.getAuthTag()])
  }
  aead.decrypt = (type, data, header) => {
    const iv = type === CLIENT ? serverNonce : clientNonce
    data.copy(iv, aead.nonceImplicitLength, 0, aead.nonceExplicitLength)
    const sealed = data.subarray(aead.nonceExplicitLength, data.length - aead.authTagLength)
    const decipher = createDecipheriv(algorithm, type === CLIENT ? serverKey : clientKey, iv, { authTagLength: aead.authTagLength })
    decipher.setAuthTag(data.subarray(data.length - aead.authTagLength))
    decipher.setAAD(aead.encodeAdditionalBuffer(header, sealed.length), { plaintextLength: sealed.length })
    return Buffer.concat([decipher.update(sealed), decipher.final()])
  }
}
