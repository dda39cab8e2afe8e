// Not an OBS capture: a real libdatachannel offer made with the calls OBS Studio's WHIP output makes
// (plugins/obs-webrtc/whip-output.cpp: audio mid "0" sendonly Opus PT 111, video mid "1" sendonly H264 PT 96,
// one SSRC each, base and base + 1, a 16-character cname and stream id, no ICE servers, setLocalDescription()
// then localDescription() at once). Run by `bash scripts/capture-sdp/run.sh libdatachannel`, which installs
// node-datachannel into a temporary folder (never into the project) and runs this file from there.
// Argument: `gathering` (libdatachannel's default: host candidates gathered before the description is read) or
// `no-gathering` (disableAutoGathering, as some OBS 30.2 builds set it: no candidates, port 9). SDP on stdout.
/* global process, console */
import nodeDataChannel from "node-datachannel"

const { Audio, PeerConnection, Video, cleanup, getLibraryVersion } = nodeDataChannel
const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
const randomId = () => Array.from({ length: 16 }, () => ALPHABET[Math.floor(Math.random() * ALPHABET.length)]).join("")

const gathering = process.argv[2] !== "no-gathering"
const streamId = randomId()
const cname = randomId()
const baseSsrc = Math.floor(Math.random() * 2 ** 32 - 1)

const pc = new PeerConnection("whip", { iceServers: [], disableAutoGathering: !gathering })
const audio = new Audio("0", "SendOnly")
audio.addOpusCodec(111)
audio.addSSRC(baseSsrc, cname, streamId, `${streamId}-audio`)
pc.addTrack(audio)
const video = new Video("1", "SendOnly")
video.addSSRC(baseSsrc + 1, cname, streamId, `${streamId}-video`)
video.addH264Codec(96)
pc.addTrack(video)
pc.setLocalDescription()

const description = pc.localDescription()
if (description === null) throw new Error("no local description")
console.error(`libdatachannel ${getLibraryVersion()}`)
process.stdout.write(description.sdp)
pc.close()
cleanup()
