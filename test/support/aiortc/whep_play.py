#!/usr/bin/python3
"""Plays a WHEP resource with aiortc and records the audio it receives.

  /usr/bin/python3 whep_play.py --url http://127.0.0.1:8080/whep/sessions/<id> --token <bearer>
      --out out.wav --seconds N [--video] [--host-candidate 127.0.0.1] [--connect-timeout 20]

The WAV written is mono, 48 kHz, s16 (aiortc's Opus decoder gives 48 kHz stereo; the channels are
averaged). Silence fills gaps in the RTP timestamps, so the file keeps the sender's timeline.
stdout, one JSON object a line: {"event":"connected","location":...}, after N seconds
{"event":"done","samples":<mono samples written>,"videoFrames":<decoded video frames>}, then
{"event":"deleted","status":...}. Exit 0; on any failure exit 1 with the HTTP status and body on stderr."""

import argparse
import asyncio
import wave

import av
from aiortc import RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

import whip_common as whip

RATE = 48000
MAX_GAP_SAMPLES = RATE * 5  # a timestamp jump beyond this is a new stream, not a gap


class AudioRecording:
    def __init__(self) -> None:
        self.resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        self.chunks = []
        self.samples = 0
        self.next_time = None  # seconds, in the sender's timeline

    def add(self, frame: av.AudioFrame) -> None:
        if frame.pts is not None and frame.time_base is not None:
            time = float(frame.pts * frame.time_base)
            if self.next_time is not None:
                gap = round((time - self.next_time) * RATE)
                if 0 < gap <= MAX_GAP_SAMPLES:
                    self.append(bytes(2 * gap))
            self.next_time = time + frame.samples / frame.sample_rate
        for mono in self.resampler.resample(frame):
            self.append(bytes(mono.planes[0])[: 2 * mono.samples])

    def append(self, pcm: bytes) -> None:
        self.chunks.append(pcm)
        self.samples += len(pcm) // 2

    def write(self, path: str) -> None:
        with wave.open(path, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(b"".join(self.chunks))


async def consume(track: MediaStreamTrack, recording: AudioRecording, counts: dict) -> None:
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        if track.kind == "audio":
            recording.add(frame)
        else:
            counts["videoFrames"] += 1


def arguments() -> argparse.Namespace:
    parser = whip.parser(__doc__, "WHEP endpoint, e.g. http://127.0.0.1:8080/whep/sessions/<id>", "Bearer token (owner, operator or share token)")
    parser.add_argument("--out", required=True, help="WAV file to write (mono 48 kHz s16)")
    parser.add_argument("--seconds", type=float, required=True, help="how long to record once connected")
    parser.add_argument("--video", action="store_true", help="also receive video (frames are only counted)")
    return parser.parse_args()


async def main() -> None:
    args = arguments()
    whip.prepare_ice(args)
    pc = whip.peer_connection()
    recording = AudioRecording()
    counts = {"videoFrames": 0}
    consumers = []
    pc.on("track", lambda track: consumers.append(asyncio.ensure_future(consume(track, recording, counts))))
    try:
        pc.addTransceiver("audio", direction="recvonly")
        if args.video:
            pc.addTransceiver("video", direction="recvonly")

        response = await whip.post_offer(args.url, args.token, pc)
        location = whip.resolve(response, response.headers["location"])
        await pc.setRemoteDescription(RTCSessionDescription(sdp=response.body, type="answer"))
        await whip.wait_connected(pc, args.connect_timeout)
        lost = whip.connection_lost(pc)
        whip.emit("connected", location=location)

        await asyncio.wait([lost, asyncio.ensure_future(asyncio.sleep(args.seconds))],
                           return_when=asyncio.FIRST_COMPLETED)
        if lost.done():
            whip.fail(f"connection {lost.result()} while playing")
        for consumer in consumers:
            if consumer.done() and consumer.exception() is not None:
                whip.fail(f"receiving failed: {consumer.exception()!r}")
            consumer.cancel()
        recording.write(args.out)
        whip.emit("done", samples=recording.samples, videoFrames=counts["videoFrames"], out=args.out)
        await whip.delete(location, args.token)
    finally:
        await pc.close()


if __name__ == "__main__":
    whip.run(main)
