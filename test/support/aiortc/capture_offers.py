#!/usr/bin/python3
"""Regenerates test/fixtures/sdp/aiortc-1.4-*.sdp: runs whip_publish.py and whep_play.py against a
recording HTTP server on 127.0.0.1 that keeps each POSTed offer and answers 500, checks that the
scripts fail with that status, checks the offers' shape, and writes them; plus aiortc's own audio+video
offer (-stock), without the scripts' extmap id fix (whip_common.bundle_safe_extension_ids).

  /usr/bin/python3 test/support/aiortc/capture_offers.py [--out test/fixtures/sdp]"""

import argparse
import math
import os
import struct
import subprocess
import sys
import tempfile
import threading
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))


class Recorder(BaseHTTPRequestHandler):
    offers = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode("utf-8")
        Recorder.offers.append({"path": self.path, "contentType": self.headers.get("Content-Type"),
                                "authorization": self.headers.get("Authorization"), "sdp": body})
        reply = b"capture server: offer recorded"
        self.send_response(500)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args) -> None:
        pass


def tone_wav(path: str) -> None:
    with wave.open(path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 16000)))
                                 for i in range(16000)))


def capture(base: str, script: str, path: str, extra: list) -> dict:
    before = len(Recorder.offers)
    result = subprocess.run(["/usr/bin/python3", os.path.join(HERE, script), "--url", base + path,
                             "--token", "capture-token", *extra], capture_output=True, text=True, timeout=60)
    if result.returncode == 0 or "HTTP 500" not in result.stderr or "offer recorded" not in result.stderr:
        sys.exit(f"{script} {extra}: expected exit 1 with HTTP 500, got {result.returncode}\n{result.stderr}")
    if len(Recorder.offers) != before + 1:
        sys.exit(f"{script} {extra}: the server received {len(Recorder.offers) - before} offers")
    offer = Recorder.offers[-1]
    assert offer["path"] == path and offer["contentType"] == "application/sdp", offer
    assert offer["authorization"] == "Bearer capture-token", offer
    return offer


def check(sdp: str, kinds: list, direction: str) -> None:
    lines = sdp.split("\r\n")
    media = [line.split(" ")[0][2:] for line in lines if line.startswith("m=")]
    assert media == kinds, (media, kinds)
    assert any(line.startswith("a=group:BUNDLE") for line in lines), "no BUNDLE"
    assert any(line.startswith("a=fingerprint:sha-256") for line in lines), "no fingerprint"
    assert sum(line == f"a={direction}" for line in lines) == len(kinds), f"not all {direction}"
    assert any(line.startswith("a=rtpmap:") and "opus/48000/2" in line for line in lines), "no Opus"
    candidates = [line for line in lines if line.startswith("a=candidate:")]
    assert candidates and all(" 127.0.0.1 " in c and " typ host" in c for c in candidates), candidates
    assert "a=end-of-candidates" in lines, "gathering not complete"


def stock_offer() -> str:
    """aiortc 1.4's own audio+video sendonly offer, without the scripts' extmap fix (loopback host only)."""
    import asyncio
    sys.path.insert(0, HERE)
    import whip_common
    from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

    async def offer() -> str:
        whip_common.restrict_host_candidates(["127.0.0.1"])
        pc = whip_common.peer_connection()
        pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        pc.addTransceiver(VideoStreamTrack(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        await pc.close()
        return sdp

    return asyncio.run(offer())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(REPO, "test", "fixtures", "sdp"))
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "tone.wav")
        tone_wav(wav)
        fixtures = {
            "aiortc-1.4-audio.sdp": (capture(base, "whip_publish.py", "/whip", ["--wav", wav]),
                                     ["audio"], "sendonly"),
            "aiortc-1.4-audio-video.sdp": (capture(base, "whip_publish.py", "/whip", ["--wav", wav, "--video"]),
                                           ["audio", "video"], "sendonly"),
            "aiortc-1.4-whep-recvonly.sdp": (capture(base, "whep_play.py", "/whep/sessions/capture",
                                                     ["--out", os.path.join(tmp, "out.wav"), "--seconds", "1",
                                                      "--video"]),
                                             ["audio", "video"], "recvonly"),
        }
    server.shutdown()
    stock = {"sdp": stock_offer()}
    assert "a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level" in stock["sdp"], "stock extmap ids changed"
    fixtures["aiortc-1.4-audio-video-stock.sdp"] = (stock, ["audio", "video"], "sendonly")
    os.makedirs(args.out, exist_ok=True)
    for name, (offer, kinds, direction) in fixtures.items():
        check(offer["sdp"], kinds, direction)
        with open(os.path.join(args.out, name), "w", newline="") as out:
            out.write(offer["sdp"])
        print(f"wrote {os.path.join(args.out, name)}")


if __name__ == "__main__":
    main()
