import { assert, describe, it } from "@effect/vitest"
import { Option } from "effect"
import { type ListenSettings, plainListenInfo, splitPorts, webRtcServerOptions, webRtcTransportOptions } from "../../src/layers/media/listen.ts"

const settings = (over: Partial<ListenSettings> = {}): ListenSettings => ({
  listenIp: "0.0.0.0",
  announcedIp: Option.some("media.example.com"),
  webRtcServer: true,
  rtcPort: 40000,
  iceConsentTimeoutSeconds: 30,
  ...over
})

describe("what mediasoup transports listen on", () => {
  it("splits the RTC range between workers without overlap, the first taking the remainder", () => {
    assert.deepStrictEqual(splitPorts(10000, 10100, 2), [{ min: 10000, max: 10050 }, { min: 10051, max: 10100 }])
    assert.deepStrictEqual(splitPorts(5, 7, 3), [{ min: 5, max: 5 }, { min: 6, max: 6 }, { min: 7, max: 7 }])
  })

  it("worker i's WebRtcServer: UDP and TCP on RTC_PORT + i, a host name announced as given", () => {
    const options = webRtcServerOptions(settings(), 2, { min: 10000, max: 10049 })
    assert.deepStrictEqual(options.listenInfos, [
      { protocol: "udp", ip: "0.0.0.0", announcedAddress: "media.example.com", port: 40002 },
      { protocol: "tcp", ip: "0.0.0.0", announcedAddress: "media.example.com", port: 40002 }
    ])
  })

  it("RTC_PORT=0: the WebRtcServer takes a free port of the worker's range; nothing announced when none is set", () => {
    const options = webRtcServerOptions(settings({ rtcPort: 0, announcedIp: Option.none() }), 1, { min: 10050, max: 10099 })
    assert.deepStrictEqual(options.listenInfos.map((l) => [l.protocol, l.portRange, l.announcedAddress]), [
      ["udp", { min: 10050, max: 10099 }, undefined],
      ["tcp", { min: 10050, max: 10099 }, undefined]
    ])
  })

  it("a WebRTC transport goes on the server when there is one, else on its worker's range; ICE consent as configured", () => {
    const range = { min: 10000, max: 10049 }
    const without = webRtcTransportOptions(settings({ iceConsentTimeoutSeconds: 12 }), undefined, range)
    assert.strictEqual(without.iceConsentTimeout, 12)
    assert.isTrue(without.enableSctp)
    assert.deepStrictEqual(without.listenInfos?.map((l) => l.portRange), [range, range])
    assert.strictEqual(plainListenInfo(settings(), range).protocol, "udp")
    assert.deepStrictEqual(plainListenInfo(settings(), range).portRange, range)
  })
})
