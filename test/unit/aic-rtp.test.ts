import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import fc from "fast-check"
import {
  needsTwoByteForm,
  parseRtp,
  removeExtension,
  getExtension,
  type RtpExtensionElement,
  type RtpExtensionInit,
  type RtpPacket,
  type RtpPacketInit,
  type RtpParseErrorReason,
  serializeRtp,
  setExtension
} from "../../src/media/rtp.ts"
import {
  AIC_EXTENSION_URI,
  AIC_FLAG_KEY_FRAME,
  AIC_METADATA_BYTES,
  AIC_QUALITY_MAX,
  AIC_RATIO_MAX,
  type AicMetadata,
  decodeAicMetadata,
  encodeAicMetadata,
  modelTypeHash,
  qualityFromFixed,
  qualityToFixed,
  ratioFromFixed,
  ratioToFixed
} from "../../src/media/aic-element.ts"

const RUNS = 300

const ok = <A, E>(r: Result.Result<A, E>): A => {
  if (Result.isFailure(r)) throw new Error(`expected success, got ${JSON.stringify(r.failure)}`)
  return r.success
}

const parsed = (bytes: Uint8Array): RtpPacket => ok(parseRtp(bytes))

const bytesOf = (u: Uint8Array): Array<number> => Array.from(u)

// ---- arbitraries ------------------------------------------------------------------------------

const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max })

const oneByteElement: fc.Arbitrary<RtpExtensionElement> = fc.record({ id: fc.integer({ min: 1, max: 14 }), data: bytes(1, 16) })
const twoByteElement: fc.Arbitrary<RtpExtensionElement> = fc.record({
  id: fc.integer({ min: 1, max: 255 }),
  data: fc.oneof(bytes(0, 20), bytes(200, 255))
})

const extensionInit: fc.Arbitrary<RtpExtensionInit | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.record({ _tag: fc.constant("OneByte"), elements: fc.array(oneByteElement, { maxLength: 8 }) }),
  fc.record({
    _tag: fc.constant("TwoByte"),
    appBits: fc.integer({ min: 0, max: 15 }),
    elements: fc.array(twoByteElement, { maxLength: 6 })
  }),
  fc.record({
    _tag: fc.constant("Raw"),
    profile: fc.integer({ min: 0, max: 0xffff }).filter((p) => p !== 0xbede && (p & 0xfff0) !== 0x1000),
    body: fc.integer({ min: 0, max: 10 }).chain((words) => bytes(words * 4, words * 4))
  })
)

const packetInit: fc.Arbitrary<RtpPacketInit> = fc.record({
  marker: fc.boolean(),
  payloadType: fc.integer({ min: 0, max: 127 }),
  sequence: fc.integer({ min: 0, max: 0xffff }),
  timestamp: fc.nat({ max: 0xffffffff }),
  ssrc: fc.nat({ max: 0xffffffff }),
  csrcs: fc.array(fc.nat({ max: 0xffffffff }), { maxLength: 15 }),
  extension: extensionInit,
  payload: bytes(0, 120),
  paddingLength: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 255 }))
})

/** A one-byte form element preceded by `padBefore` zero bytes. */
interface PaddedElement {
  readonly padBefore: number
  readonly element: RtpExtensionElement
}

/** A one-byte form body with zero padding between elements (written verbatim as "Raw" 0xBEDE). */
const paddedOneByteBody = (elements: ReadonlyArray<PaddedElement>): Uint8Array => {
  const parts: Array<number> = []
  for (const { padBefore, element } of elements) {
    for (let i = 0; i < padBefore; i++) parts.push(0)
    parts.push((element.id << 4) | (element.data.length - 1), ...element.data)
  }
  while (parts.length % 4 !== 0) parts.push(0)
  return Uint8Array.from(parts)
}

const paddedElements = fc.uniqueArray(
  fc.record({ padBefore: fc.integer({ min: 0, max: 3 }), element: oneByteElement }),
  { selector: (e) => e.element.id, minLength: 0, maxLength: 8 }
)

/** A packet whose one-byte extension has padding between elements. */
const paddedPacket = fc.record({ base: packetInit, elements: paddedElements }).map(({ base, elements }) => ({
  elements,
  bytes: serializeRtp({ ...base, extension: { _tag: "Raw", profile: 0xbede, body: paddedOneByteBody(elements) } })
}))

/** A packet with a unique-id extension in either form (or none). */
const uniqueExtensionPacket = fc.oneof(
  fc.record({ base: packetInit, elements: fc.uniqueArray(oneByteElement, { selector: (e) => e.id, maxLength: 8 }) }).map(
    ({ base, elements }) => serializeRtp({ ...base, extension: { _tag: "OneByte", elements } })
  ),
  fc.record({
    base: packetInit,
    appBits: fc.integer({ min: 0, max: 15 }),
    elements: fc.uniqueArray(twoByteElement, { selector: (e) => e.id, maxLength: 6 })
  }).map(({ appBits, base, elements }) => serializeRtp({ ...base, extension: { _tag: "TwoByte", appBits, elements } })),
  packetInit.map((base) => serializeRtp({ ...base, extension: undefined }))
)

// ---- helpers ----------------------------------------------------------------------------------

const elementsOf = (p: RtpPacket): Array<{ id: number; data: Array<number> }> =>
  p.extension === undefined || p.extension._tag === "Raw"
    ? []
    : p.extension.elements.map((e) => ({ id: e.id, data: bytesOf(e.data) }))

/** The raw bytes (header + data) of each element. */
const rawElementsOf = (p: RtpPacket): Array<{ id: number; raw: Array<number> }> =>
  p.extension === undefined || p.extension._tag === "Raw"
    ? []
    : p.extension.elements.map((e) => ({ id: e.id, raw: bytesOf(p.extension === undefined ? new Uint8Array() : p.extension.body.subarray(e.start, e.end)) }))

/** Payload + padding: everything after the header extension. */
const tailOf = (p: RtpPacket): Array<number> => bytesOf(p.bytes.subarray(p.payload.byteOffset - p.bytes.byteOffset))

const fixedFields = (p: RtpPacket) => ({
  marker: p.marker,
  payloadType: p.payloadType,
  sequence: p.sequence,
  timestamp: p.timestamp,
  ssrc: p.ssrc,
  csrcs: [...p.csrcs],
  paddingLength: p.paddingLength
})

const rejectReason = (b: Uint8Array): RtpParseErrorReason | undefined => {
  const r = parseRtp(b)
  return Result.isFailure(r) ? r.failure.reason : undefined
}

// ---- parse / serialize ------------------------------------------------------------------------

describe("RTP parse/serialize", () => {
  it("round trips arbitrary packets: parse(serialize(p)) == p", () => {
    fc.assert(
      fc.property(packetInit, (init) => {
        const bytes = serializeRtp(init)
        const p = parsed(bytes)
        assert.strictEqual(p.version, 2)
        assert.deepStrictEqual(fixedFields(p), {
          marker: init.marker ?? false,
          payloadType: init.payloadType,
          sequence: init.sequence,
          timestamp: init.timestamp,
          ssrc: init.ssrc,
          csrcs: [...(init.csrcs ?? [])],
          paddingLength: init.paddingLength ?? 0
        })
        assert.deepStrictEqual(bytesOf(p.payload), bytesOf(init.payload))
        const ext = init.extension
        if (ext === undefined) {
          assert.isUndefined(p.extension)
        } else {
          assert.isDefined(p.extension)
          assert.strictEqual(p.extension?._tag, ext._tag)
          if (ext._tag === "Raw") {
            assert.strictEqual(p.extension?.profile, ext.profile)
            assert.deepStrictEqual(bytesOf(p.extension?.body ?? new Uint8Array()), bytesOf(ext.body))
          } else {
            assert.deepStrictEqual(elementsOf(p), ext.elements.map((e) => ({ id: e.id, data: bytesOf(e.data) })))
            if (ext._tag === "TwoByte" && p.extension?._tag === "TwoByte") {
              assert.strictEqual(p.extension.appBits, ext.appBits ?? 0)
              assert.strictEqual(p.extension.profile, 0x1000 | (ext.appBits ?? 0))
            }
          }
        }
        // serialize(parse(bytes)) == bytes for the canonical layout serializeRtp writes
        const again = serializeRtp({ ...p, extension: p.extension })
        assert.deepStrictEqual(bytesOf(again), bytesOf(bytes))
      }),
      { numRuns: RUNS }
    )
  })

  it("returns views of the packet, not copies", () => {
    fc.assert(
      fc.property(packetInit, fc.integer({ min: 0, max: 7 }), (init, lead) => {
        const bytes = serializeRtp(init)
        // put the packet at an offset inside a larger buffer
        const host = new Uint8Array(lead + bytes.length + 3)
        host.set(bytes, lead)
        const view = host.subarray(lead, lead + bytes.length)
        const p = parsed(view)
        assert.strictEqual(p.payload.buffer, host.buffer)
        assert.strictEqual(p.bytes, view)
        if (p.extension !== undefined) {
          assert.strictEqual(p.extension.body.buffer, host.buffer)
          if (p.extension._tag !== "Raw") { for (const e of p.extension.elements) assert.strictEqual(e.data.buffer, host.buffer) }
        }
        assert.deepStrictEqual(bytesOf(p.payload), bytesOf(init.payload))
      }),
      { numRuns: 100 }
    )
  })

  it("parses one-byte padding between elements and stops at id 15", () => {
    const body = Uint8Array.of(0x10, 0xaa, 0, 0, 0x21, 0xbb, 0xcc, 0xf3, 0x31, 1, 2, 0)
    const p = parsed(
      serializeRtp({ payloadType: 96, sequence: 1, timestamp: 2, ssrc: 3, payload: Uint8Array.of(9), extension: { _tag: "Raw", profile: 0xbede, body } })
    )
    assert.strictEqual(p.extension?._tag, "OneByte")
    assert.deepStrictEqual(elementsOf(p), [{ id: 1, data: [0xaa] }, { id: 2, data: [0xbb, 0xcc] }])
    assert.deepStrictEqual(bytesOf(p.payload), [9])
  })

  it("parses padded one-byte blocks (property)", () => {
    fc.assert(
      fc.property(paddedPacket, ({ bytes, elements }) => {
        const p = parsed(bytes)
        assert.deepStrictEqual(elementsOf(p), elements.map(({ element }) => ({ id: element.id, data: bytesOf(element.data) })))
      }),
      { numRuns: RUNS }
    )
  })

  it("parses two-byte elements of length 0 and padding", () => {
    const body = Uint8Array.of(0x20, 0, 0, 0xff, 2, 7, 8, 0)
    const p = parsed(
      serializeRtp({ payloadType: 0, sequence: 0, timestamp: 0, ssrc: 0, payload: new Uint8Array(), extension: { _tag: "Raw", profile: 0x1003, body } })
    )
    assert.strictEqual(p.extension?._tag, "TwoByte")
    if (p.extension?._tag === "TwoByte") assert.strictEqual(p.extension.appBits, 3)
    assert.deepStrictEqual(elementsOf(p), [{ id: 0x20, data: [] }, { id: 0xff, data: [7, 8] }])
  })

  it("never throws on arbitrary bytes", () => {
    fc.assert(
      fc.property(
        fc.oneof(bytes(0, 80), packetInit.map(serializeRtp).chain((b) => fc.integer({ min: 0, max: b.length }).map((n) => b.subarray(0, n)))),
        (b) => {
          const r = parseRtp(b)
          assert.isTrue(Result.isSuccess(r) || Result.isFailure(r))
        }
      ),
      { numRuns: RUNS }
    )
  })
})

// ---- malformed packets ------------------------------------------------------------------------

describe("RTP rejects malformed packets with a reason", () => {
  const valid = (init: Partial<RtpPacketInit> = {}): Uint8Array =>
    serializeRtp({ payloadType: 96, sequence: 7, timestamp: 1, ssrc: 2, payload: Uint8Array.of(1, 2, 3, 4), ...init })

  it("too_short", () => {
    for (let n = 0; n < 12; n++) assert.strictEqual(rejectReason(valid().subarray(0, n)), "too_short")
  })

  it("bad_version, with the sequence number", () => {
    for (const version of [0, 1, 3]) {
      const b = valid()
      b[0] = (b[0]! & 0x3f) | (version << 6)
      const r = parseRtp(b)
      assert.isTrue(Result.isFailure(r))
      if (Result.isFailure(r)) {
        assert.strictEqual(r.failure.reason, "bad_version")
        assert.strictEqual(r.failure.sequence, 7)
        assert.strictEqual(r.failure._tag, "RtpParseError")
      }
    }
  })

  it("csrc_overflow", () => {
    const b = valid({ payload: new Uint8Array() })
    b[0] = b[0]! | 0x01
    assert.strictEqual(rejectReason(b), "csrc_overflow")
    const withCsrcs = valid({ csrcs: [1, 2, 3] })
    assert.strictEqual(rejectReason(withCsrcs.subarray(0, 12 + 8)), "csrc_overflow")
  })

  it("extension_overflow: header or words past the end", () => {
    const b = valid({ payload: Uint8Array.of(0xbe, 0xde) })
    b[0] = b[0]! | 0x10
    assert.strictEqual(rejectReason(b), "extension_overflow") // 2 bytes, the extension header needs 4
    const e = valid({ extension: { _tag: "OneByte", elements: [{ id: 1, data: Uint8Array.of(1, 2, 3) }] }, payload: new Uint8Array() })
    e[15] = 2 // 2 words, only 1 present
    assert.strictEqual(rejectReason(e), "extension_overflow")
  })

  it("extension_element_overflow in both forms", () => {
    // one-byte: element claims 16 bytes in a 4-byte block
    const one = valid({ extension: { _tag: "Raw", profile: 0xbede, body: Uint8Array.of(0x1f, 1, 2, 3) } })
    assert.strictEqual(rejectReason(one), "extension_element_overflow")
    // two-byte: element claims 9 bytes
    const two = valid({ extension: { _tag: "Raw", profile: 0x1000, body: Uint8Array.of(5, 9, 1, 2) } })
    assert.strictEqual(rejectReason(two), "extension_element_overflow")
    // two-byte: header cut by the block end
    const cut = valid({ extension: { _tag: "Raw", profile: 0x1000, body: Uint8Array.of(0, 0, 0, 5) } })
    assert.strictEqual(rejectReason(cut), "extension_element_overflow")
  })

  it("bad_padding: count 0 or past the payload", () => {
    const zero = valid({ paddingLength: 4 })
    zero[zero.length - 1] = 0
    assert.strictEqual(rejectReason(zero), "bad_padding")
    const past = valid({ paddingLength: 4 }) // 12 header + 4 payload + 4 padding
    past[past.length - 1] = 9 // reaches into the header
    assert.strictEqual(rejectReason(past), "bad_padding")
    const all = valid({ paddingLength: 4 })
    all[all.length - 1] = 8 // consumes the whole payload: allowed (empty payload)
    assert.deepStrictEqual(bytesOf(parsed(all).payload), [])
    const csrcPast = valid({ csrcs: [1], payload: new Uint8Array(), paddingLength: 1 })
    csrcPast[csrcPast.length - 1] = 2
    assert.strictEqual(rejectReason(csrcPast), "bad_padding")
  })

  it("any truncation of a valid packet either parses or is rejected with a reason", () => {
    fc.assert(
      fc.property(packetInit, fc.nat(), (init, cut) => {
        const b = serializeRtp(init)
        const n = cut % (b.length + 1)
        const r = parseRtp(b.subarray(0, n))
        if (Result.isFailure(r)) assert.isString(r.failure.reason)
        if (n < 12) assert.strictEqual(rejectReason(b.subarray(0, n)), "too_short")
      }),
      { numRuns: RUNS }
    )
  })
})

// ---- setExtension / removeExtension -----------------------------------------------------------

describe("setExtension / removeExtension", () => {
  it("keeps every other element byte-identical, payload and padding untouched (same form)", () => {
    fc.assert(
      fc.property(fc.oneof(uniqueExtensionPacket, paddedPacket.map((p) => p.bytes)), fc.integer({ min: 1, max: 14 }), bytes(1, 16), (bytes, id, data) => {
        const before = parsed(bytes)
        const after = parsed(ok(setExtension(bytes, id, data)))
        const wasTwoByte = before.extension?._tag === "TwoByte"
        assert.strictEqual(after.extension?._tag, wasTwoByte ? "TwoByte" : "OneByte")
        assert.deepStrictEqual(fixedFields(after), fixedFields(before))
        assert.deepStrictEqual(tailOf(after), tailOf(before))
        assert.deepStrictEqual(bytesOf(after.payload), bytesOf(before.payload))
        // other elements: same order, same raw bytes (header + data)
        assert.deepStrictEqual(
          rawElementsOf(after).filter((e) => e.id !== id),
          rawElementsOf(before).filter((e) => e.id !== id)
        )
        assert.deepStrictEqual(bytesOf(getExtension(after, id) ?? new Uint8Array()), bytesOf(data))
        // a replaced element keeps its position
        const beforeIds = elementsOf(before).map((e) => e.id)
        const afterIds = elementsOf(after).map((e) => e.id)
        assert.deepStrictEqual(afterIds, beforeIds.includes(id) ? beforeIds : [...beforeIds, id])
        // the input is not modified
        assert.deepStrictEqual(bytesOf(parsed(bytes).bytes), bytesOf(bytes))
      }),
      { numRuns: RUNS }
    )
  })

  it("keeps the padding between elements in the same form", () => {
    fc.assert(
      fc.property(paddedPacket, fc.integer({ min: 1, max: 14 }), bytes(1, 16), ({ bytes }, id, data) => {
        const before = parsed(bytes)
        const after = parsed(ok(setExtension(bytes, id, data)))
        const ext = before.extension
        const lastEnd = ext === undefined || ext._tag === "Raw" ? 0 : (ext.elements.at(-1)?.end ?? 0)
        const hasId = getExtension(before, id) !== undefined
        if (!hasId) {
          // appended: the old block up to its last element is a prefix of the new one
          assert.deepStrictEqual(
            bytesOf(after.extension?.body.subarray(0, lastEnd) ?? new Uint8Array()),
            bytesOf(ext?.body.subarray(0, lastEnd) ?? new Uint8Array())
          )
        }
      }),
      { numRuns: RUNS }
    )
    const body = Uint8Array.of(0, 0x10, 0xaa, 0, 0, 0x21, 0xbb, 0xcc)
    const b = serializeRtp({
      payloadType: 96,
      sequence: 1,
      timestamp: 2,
      ssrc: 3,
      payload: Uint8Array.of(9),
      extension: { _tag: "Raw", profile: 0xbede, body }
    })
    const replaced = parsed(ok(setExtension(b, 1, Uint8Array.of(1, 2))))
    assert.deepStrictEqual(bytesOf(replaced.extension?.body ?? new Uint8Array()), [0, 0x11, 1, 2, 0, 0, 0x21, 0xbb, 0xcc, 0, 0, 0])
    const removed = parsed(ok(removeExtension(b, 2)))
    assert.deepStrictEqual(bytesOf(removed.extension?.body ?? new Uint8Array()), [0, 0x10, 0xaa, 0])
    const removedFirst = parsed(ok(removeExtension(b, 1)))
    assert.deepStrictEqual(bytesOf(removedFirst.extension?.body ?? new Uint8Array()), [0, 0, 0x21, 0xbb, 0xcc, 0, 0, 0])
  })

  it("switches the whole block to the two-byte form when the element needs it", () => {
    const needsTwo = fc.oneof(
      fc.record({ id: fc.integer({ min: 15, max: 255 }), data: bytes(0, 40) }),
      fc.record({ id: fc.integer({ min: 1, max: 255 }), data: fc.constant(new Uint8Array()) }),
      fc.record({ id: fc.integer({ min: 1, max: 255 }), data: bytes(17, 255) })
    )
    fc.assert(
      fc.property(fc.oneof(uniqueExtensionPacket, paddedPacket.map((p) => p.bytes)), needsTwo, (bytes, { id, data }) => {
        assert.isTrue(needsTwoByteForm(id, data.length))
        const before = parsed(bytes)
        const after = parsed(ok(setExtension(bytes, id, data)))
        assert.strictEqual(after.extension?._tag, "TwoByte")
        if (after.extension?._tag === "TwoByte") {
          const expectedAppBits = before.extension?._tag === "TwoByte" ? before.extension.appBits : 0
          assert.strictEqual(after.extension.appBits, expectedAppBits)
        }
        // every other element keeps its id, order and data bytes
        assert.deepStrictEqual(
          elementsOf(after).filter((e) => e.id !== id),
          elementsOf(before).filter((e) => e.id !== id)
        )
        assert.deepStrictEqual(bytesOf(getExtension(after, id) ?? Uint8Array.of(1)), bytesOf(data))
        assert.deepStrictEqual(fixedFields(after), fixedFields(before))
        assert.deepStrictEqual(tailOf(after), tailOf(before))
      }),
      { numRuns: RUNS }
    )
  })

  it("removes one element and keeps the others; drops an empty block", () => {
    fc.assert(
      fc.property(fc.oneof(uniqueExtensionPacket, paddedPacket.map((p) => p.bytes)), fc.integer({ min: 1, max: 255 }), (bytes, pick) => {
        const before = parsed(bytes)
        const ids = elementsOf(before).map((e) => e.id)
        const id = ids.length > 0 ? ids[pick % ids.length]! : pick
        const after = parsed(ok(removeExtension(bytes, id)))
        assert.isUndefined(getExtension(after, id))
        assert.deepStrictEqual(rawElementsOf(after), rawElementsOf(before).filter((e) => e.id !== id))
        if (elementsOf(after).length === 0) assert.isUndefined(after.extension)
        else assert.strictEqual(after.extension?._tag, before.extension?._tag)
        assert.deepStrictEqual(fixedFields(after), fixedFields(before))
        assert.deepStrictEqual(tailOf(after), tailOf(before))
      }),
      { numRuns: RUNS }
    )
  })

  it("accepts a parsed packet as well as bytes", () => {
    fc.assert(
      fc.property(uniqueExtensionPacket, fc.integer({ min: 1, max: 255 }), bytes(0, 30), (bytes, id, data) => {
        assert.deepStrictEqual(bytesOf(ok(setExtension(parsed(bytes), id, data))), bytesOf(ok(setExtension(bytes, id, data))))
      }),
      { numRuns: 100 }
    )
  })

  it("adds a one-byte block to a packet without an extension", () => {
    const b = serializeRtp({ payloadType: 111, sequence: 5, timestamp: 6, ssrc: 7, payload: Uint8Array.of(1, 2, 3), paddingLength: 3 })
    const out = ok(setExtension(b, 3, Uint8Array.of(0xaa, 0xbb)))
    assert.deepStrictEqual(bytesOf(out.subarray(12, 20)), [0xbe, 0xde, 0, 1, 0x31, 0xaa, 0xbb, 0])
    assert.strictEqual(out[0]! & 0x30, 0x30) // X and P bits
    assert.deepStrictEqual(bytesOf(out.subarray(20)), bytesOf(b.subarray(12)))
  })

  it("rejects bad ids, long data, foreign profiles and malformed packets", () => {
    const b = serializeRtp({ payloadType: 96, sequence: 0, timestamp: 0, ssrc: 0, payload: Uint8Array.of(1) })
    const reason = (r: Result.Result<Uint8Array, { readonly reason: string }>) => (Result.isFailure(r) ? r.failure.reason : "ok")
    assert.strictEqual(reason(setExtension(b, 0, Uint8Array.of(1))), "bad_id")
    assert.strictEqual(reason(setExtension(b, 256, Uint8Array.of(1))), "bad_id")
    assert.strictEqual(reason(setExtension(b, 1.5, Uint8Array.of(1))), "bad_id")
    assert.strictEqual(reason(removeExtension(b, 0)), "bad_id")
    assert.strictEqual(reason(setExtension(b, 1, new Uint8Array(256))), "data_too_long")
    const foreign = serializeRtp({
      payloadType: 96,
      sequence: 0,
      timestamp: 0,
      ssrc: 0,
      payload: Uint8Array.of(1),
      extension: { _tag: "Raw", profile: 0xabcd, body: new Uint8Array(4) }
    })
    assert.strictEqual(reason(setExtension(foreign, 1, Uint8Array.of(1))), "foreign_extension")
    assert.strictEqual(reason(setExtension(b.subarray(0, 5), 1, Uint8Array.of(1))), "too_short")
  })
})

// ---- AIC metadata -----------------------------------------------------------------------------

describe("AIC metadata extension", () => {
  const metadata: fc.Arbitrary<AicMetadata> = fc.record({
    version: fc.constant(1),
    compressionRatio: fc.integer({ min: 0, max: AIC_RATIO_MAX }),
    qualityScore: fc.integer({ min: 0, max: AIC_QUALITY_MAX }),
    modelTypeHash: fc.nat({ max: 0xffffffff }),
    flags: fc.integer({ min: 0, max: 255 })
  })

  it("round trips, 16 bytes, reserved zero, fits the one-byte form", () => {
    fc.assert(
      fc.property(metadata, (m) => {
        const data = ok(encodeAicMetadata(m))
        assert.strictEqual(data.length, AIC_METADATA_BYTES)
        assert.deepStrictEqual(bytesOf(data.subarray(10)), [0, 0, 0, 0, 0, 0])
        assert.deepStrictEqual(ok(decodeAicMetadata(data)), m)
        assert.isFalse(needsTwoByteForm(1, data.length))
      }),
      { numRuns: RUNS }
    )
  })

  it("writes the seed's layout", () => {
    const data = ok(encodeAicMetadata({ version: 1, compressionRatio: 0x1234, qualityScore: 9000, modelTypeHash: 0xdeadbeef, flags: AIC_FLAG_KEY_FRAME }))
    assert.deepStrictEqual(bytesOf(data), [1, 0x12, 0x34, 0x23, 0x28, 0xde, 0xad, 0xbe, 0xef, 4, 0, 0, 0, 0, 0, 0])
  })

  it("rejects bad lengths, versions and out-of-range fields", () => {
    fc.assert(
      fc.property(bytes(0, 40).filter((b) => b.length !== 16), (b) => {
        const r = decodeAicMetadata(b)
        assert.isTrue(Result.isFailure(r) && r.failure.reason === "bad_length")
      }),
      { numRuns: 100 }
    )
    fc.assert(
      fc.property(metadata, fc.integer({ min: 0, max: 255 }).filter((v) => v !== 1), (m, version) => {
        const data = ok(encodeAicMetadata(m))
        data[0] = version
        const r = decodeAicMetadata(data)
        assert.isTrue(Result.isFailure(r) && r.failure.reason === "bad_version")
      }),
      { numRuns: 100 }
    )
    const good = ok(encodeAicMetadata({ version: 1, compressionRatio: 1, qualityScore: 1, modelTypeHash: 1, flags: 0 }))
    good[3] = 0x27
    good[4] = 0x11 // 10001
    assert.strictEqual(Result.isFailure(decodeAicMetadata(good)) ? "failed" : "ok", "failed")
    const reason = (r: Result.Result<Uint8Array, { readonly reason: string }>) => (Result.isFailure(r) ? r.failure.reason : "ok")
    const base: AicMetadata = { version: 1, compressionRatio: 0, qualityScore: 0, modelTypeHash: 0, flags: 0 }
    assert.strictEqual(reason(encodeAicMetadata({ ...base, qualityScore: 10_001 })), "out_of_range")
    assert.strictEqual(reason(encodeAicMetadata({ ...base, compressionRatio: 65_536 })), "out_of_range")
    assert.strictEqual(reason(encodeAicMetadata({ ...base, compressionRatio: 1.5 })), "out_of_range")
    assert.strictEqual(reason(encodeAicMetadata({ ...base, modelTypeHash: -1 })), "out_of_range")
    assert.strictEqual(reason(encodeAicMetadata({ ...base, flags: 256 })), "out_of_range")
  })

  it("scales and hash", () => {
    assert.strictEqual(AIC_EXTENSION_URI, "urn:auralink:rtp-hdrext:aic:1")
    assert.strictEqual(ratioToFixed(250, 1000), 2500)
    assert.strictEqual(ratioToFixed(1000, 1000), 10_000)
    assert.strictEqual(ratioToFixed(100_000, 1), AIC_RATIO_MAX)
    assert.strictEqual(ratioToFixed(5, 0), 0)
    assert.strictEqual(ratioFromFixed(2500), 0.25)
    assert.strictEqual(qualityToFixed(0.95), 9500)
    assert.strictEqual(qualityToFixed(1.7), AIC_QUALITY_MAX)
    assert.strictEqual(qualityToFixed(-1), 0)
    assert.strictEqual(qualityFromFixed(9500), 0.95)
    assert.strictEqual(modelTypeHash(""), 0x811c9dc5)
    assert.strictEqual(modelTypeHash("a"), 0xe40c292c)
  })

  it("travels in an RTP packet through setExtension", () => {
    const m: AicMetadata = {
      version: 1,
      compressionRatio: ratioToFixed(300, 1200),
      qualityScore: qualityToFixed(0.9),
      modelTypeHash: modelTypeHash("h264-v1"),
      flags: 0
    }
    const b = serializeRtp({
      payloadType: 96,
      sequence: 1,
      timestamp: 1,
      ssrc: 1,
      payload: Uint8Array.of(1, 2),
      extension: { _tag: "OneByte", elements: [{ id: 2, data: Uint8Array.of(7) }] }
    })
    const p = parsed(ok(setExtension(b, 5, ok(encodeAicMetadata(m)))))
    assert.strictEqual(p.extension?._tag, "OneByte")
    assert.deepStrictEqual(ok(decodeAicMetadata(getExtension(p, 5) ?? new Uint8Array())), m)
  })
})
