#!/usr/bin/python3
"""Publishes a WAV file (and, with --video, a moving test pattern) to a WHIP endpoint with aiortc.

  /usr/bin/python3 whip_publish.py --url http://127.0.0.1:8080/whip --token <bearer> --wav in.wav
      [--video] [--seconds N] [--delete] [--host-candidate 127.0.0.1] [--connect-timeout 20]

stdout, one JSON object a line: {"event":"published","location":...,"sessionId":...} once connected,
{"event":"done","reason":"eof"|"seconds","seconds":...} when the WAV has been streamed in real time
(once, no loop) or --seconds has passed, then {"event":"deleted","status":...} with --delete.
Exit 0; on any failure exit 1 with the HTTP status and body (or the reason) on stderr."""

import argparse
import asyncio
import time

import numpy
from aiortc import RTCSessionDescription, VideoStreamTrack
from aiortc.contrib.media import MediaPlayer
from av import VideoFrame

import whip_common as whip


class MovingBarTrack(VideoStreamTrack):
    """320x240 at 30 fps: a white bar sweeping across a dark gradient, so encoders see motion."""

    def __init__(self, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self.width, self.height = width, height
        gradient = numpy.linspace(0, 96, width, dtype=numpy.uint8)
        self.background = numpy.repeat(numpy.tile(gradient, (height, 1))[:, :, None], 3, axis=2)
        self.count = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        image = self.background.copy()
        x = (self.count * 4) % self.width
        image[:, x:x + 16, :] = 255
        self.count += 1
        frame = VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


def arguments() -> argparse.Namespace:
    parser = whip.parser(__doc__, "WHIP endpoint, e.g. http://127.0.0.1:8080/whip", "Bearer token")
    parser.add_argument("--wav", required=True, help="audio file to stream (played once, in real time)")
    parser.add_argument("--video", action="store_true", help="also send a moving test pattern (VP8/H264)")
    parser.add_argument("--seconds", type=float, help="stop after this long even if the WAV is longer")
    parser.add_argument("--delete", action="store_true", help="DELETE the resource when done")
    parser.add_argument("--wrong-fingerprint", action="store_true",
                        help="offer a fingerprint that does not match the DTLS certificate (the handshake fails)")
    return parser.parse_args()


async def main() -> None:
    args = arguments()
    whip.prepare_ice(args)
    try:
        player = MediaPlayer(args.wav)  # loop=False: the track ends at end of file
    except Exception as error:
        whip.fail(f"cannot open {args.wav}: {error}")
    if player.audio is None:
        whip.fail(f"{args.wav} has no audio stream")
    pc = whip.peer_connection()
    try:
        ended = asyncio.get_running_loop().create_future()
        player.audio.on("ended", lambda: ended.done() or ended.set_result(None))
        pc.addTransceiver(player.audio, direction="sendonly")
        if args.video:
            pc.addTransceiver(MovingBarTrack(), direction="sendonly")

        response = await whip.post_offer(args.url, args.token, pc, corrupt=args.wrong_fingerprint)
        location = whip.resolve(response, response.headers["location"])
        await pc.setRemoteDescription(RTCSessionDescription(sdp=response.body, type="answer"))
        await whip.wait_connected(pc, args.connect_timeout)
        lost = whip.connection_lost(pc)
        started = time.monotonic()
        whip.emit("published", location=location, sessionId=response.headers.get("x-session-id"))

        waits = [ended, lost]
        if args.seconds is not None:
            waits.append(asyncio.ensure_future(asyncio.sleep(args.seconds)))
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if lost.done():
            whip.fail(f"connection {lost.result()} while streaming")
        streamed = round(time.monotonic() - started, 3)
        # The last packets were handed to the transport just before the track ended: let them leave.
        await asyncio.sleep(0.2)
        whip.emit("done", reason="eof" if ended.done() else "seconds", seconds=streamed)
        if args.delete:
            await whip.delete(location, args.token)
    finally:
        await pc.close()


if __name__ == "__main__":
    whip.run(main)
