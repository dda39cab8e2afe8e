// The AudioWorklet that hands every 128-sample block of the first channel to the demo page.
class Tap extends AudioWorkletProcessor {
  process(inputs) {
    const channel = inputs[0] && inputs[0][0]
    if (channel) this.port.postMessage(channel.slice(0))
    return true
  }
}
registerProcessor("auralink-tap", Tap)
