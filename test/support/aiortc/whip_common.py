"""Shared by whip_publish.py and whip_play.py: HTTP (http.client in a thread, no aiohttp on Debian's
python3), loopback-only ICE gathering, JSON-line events, and failing with the HTTP status on stderr.

Run with Debian's /usr/bin/python3 (python3-aiortc 1.4.0)."""

import argparse
import asyncio
import http.client
import json
import sys
import urllib.parse
from dataclasses import dataclass
from typing import Dict, List, NoReturn, Optional

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.codecs import HEADER_EXTENSIONS
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters


class Failure(Exception):
    """Ends the script with exit code 1 and this message on stderr."""


@dataclass
class HttpResponse:
    status: int
    headers: Dict[str, str]
    body: str
    # The URL that answered (after redirects): a relative Location resolves against it.
    url: str = ""


def emit(event: str, **fields) -> None:
    print(json.dumps({"event": event, **fields}, separators=(",", ":")), flush=True)


def fail(message: str) -> NoReturn:
    raise Failure(message)


def _request(method: str, url: str, headers: Dict[str, str], body: Optional[str], timeout: float) -> HttpResponse:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        fail(f"unsupported URL scheme: {url}")
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        connection.request(method, path, body=body.encode("utf-8") if body is not None else None, headers=headers)
        response = connection.getresponse()
        text = response.read().decode("utf-8", errors="replace")
        # Header names lower-cased: callers look them up case-insensitively.
        return HttpResponse(response.status, {k.lower(): v for k, v in response.getheaders()}, text)
    finally:
        connection.close()


MAX_REDIRECTS = 5


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def request(method: str, url: str, token: str, body: Optional[str] = None,
                  content_type: Optional[str] = None, timeout: float = 15.0) -> HttpResponse:
    """Follows 307/308 with the same method and body (RFC 9725 allows a WHIP endpoint to redirect),
    dropping Authorization when the redirect leaves the origin, as browsers and fetch do."""
    headers = {"Authorization": f"Bearer {token}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
        headers["Accept"] = "application/sdp"
    for _ in range(MAX_REDIRECTS + 1):
        try:
            response = await asyncio.to_thread(_request, method, url, headers, body, timeout)
        except OSError as error:
            fail(f"{method} {url}: {error}")
        response.url = url
        if response.status not in (307, 308) or "location" not in response.headers:
            return response
        target = urllib.parse.urljoin(url, response.headers["location"])
        if _origin(target) != _origin(url):
            headers.pop("Authorization", None)
        emit("redirected", status=response.status, to=target)
        url = target
    fail(f"{method}: more than {MAX_REDIRECTS} redirects")


def resolve(response: HttpResponse, location: str) -> str:
    """The Location header is relative to the URL that answered the POST (RFC 9725), after any redirect."""
    return urllib.parse.urljoin(response.url, location)


def parser(doc: Optional[str], url_help: str, token_help: str) -> argparse.ArgumentParser:
    """The options both scripts take: the endpoint, the bearer, where to gather host candidates, how long to wait."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help=url_help)
    p.add_argument("--token", required=True, help=token_help)
    p.add_argument("--host-candidate", action="append", dest="hosts",
                   help="address(es) to gather host candidates on (default 127.0.0.1)")
    p.add_argument("--connect-timeout", type=float, default=20.0)
    return p


def prepare_ice(args: argparse.Namespace) -> None:
    """Host candidates where asked (127.0.0.1 by default) and extension ids safe under BUNDLE."""
    restrict_host_candidates(args.hosts or ["127.0.0.1"])
    bundle_safe_extension_ids()


def restrict_host_candidates(addresses: List[str]) -> None:
    """aioice 0.8 gathers every interface address except 127.0.0.1 and ::1; tests stay on loopback."""
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [
        a for a in addresses if (":" in a and use_ipv6) or (":" not in a and use_ipv4)
    ]


def bundle_safe_extension_ids() -> None:
    """aiortc 1.4 offers ssrc-audio-level (audio) and abs-send-time (video) both as extmap id 2, but parses
    all RTP of a BUNDLE transport with one id map: an audio packet's 1-byte level is then read as a 3-byte
    abs-send-time, the parse raises and the DTLS transport closes. Audio level moves to id 3."""
    HEADER_EXTENSIONS["audio"][:] = [
        RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
        RTCRtpHeaderExtensionParameters(id=3, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
    ]


def peer_connection() -> RTCPeerConnection:
    # iceServers=[]: aiortc's default is a public STUN server, unreachable (and unwanted) here.
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


def wrong_fingerprint(sdp: str) -> str:
    """The offer with every a=fingerprint's last byte changed: the DTLS certificate will not match it."""
    def change(line: str) -> str:
        if not line.startswith("a=fingerprint:"):
            return line
        last = line[-2:]
        return line[:-2] + ("00" if last != "00" else "01")
    return "\r\n".join(change(line) for line in sdp.split("\r\n"))


async def post_offer(url: str, token: str, pc: RTCPeerConnection, corrupt: bool = False) -> HttpResponse:
    """setLocalDescription gathers all candidates first (aiortc does not trickle); 201 or fail.
    `corrupt`: the offer's fingerprint is changed (a DTLS handshake that must fail)."""
    await pc.setLocalDescription(await pc.createOffer())
    sdp = wrong_fingerprint(pc.localDescription.sdp) if corrupt else pc.localDescription.sdp
    response = await request("POST", url, token, sdp, "application/sdp")
    if response.status != 201:
        fail(f"POST {url}: HTTP {response.status}\n{response.body}")
    if "location" not in response.headers:
        fail(f"POST {url}: 201 without a Location header")
    return response


async def wait_connected(pc: RTCPeerConnection, timeout: float) -> None:
    connected = asyncio.get_running_loop().create_future()

    def on_state() -> None:
        if connected.done():
            return
        if pc.connectionState == "connected":
            connected.set_result(None)
        elif pc.connectionState in ("failed", "closed"):
            connected.set_exception(Failure(f"connection {pc.connectionState} before it connected"))

    pc.on("connectionstatechange", on_state)
    on_state()
    try:
        await asyncio.wait_for(connected, timeout)
    except asyncio.TimeoutError:
        fail(f"not connected after {timeout} s (connectionState {pc.connectionState}, "
             f"iceConnectionState {pc.iceConnectionState})")


def connection_lost(pc: RTCPeerConnection) -> "asyncio.Future[str]":
    """Resolves with the state when an established connection fails or closes."""
    lost = asyncio.get_running_loop().create_future()

    def on_state() -> None:
        if not lost.done() and pc.connectionState in ("failed", "closed"):
            lost.set_result(pc.connectionState)

    pc.on("connectionstatechange", on_state)
    return lost


async def delete(location: str, token: str) -> None:
    response = await request("DELETE", location, token)
    emit("deleted", status=response.status)
    if response.status < 200 or response.status >= 300:
        fail(f"DELETE {location}: HTTP {response.status}\n{response.body}")


def run(main) -> None:
    """Runs main(); a Failure exits 1 with its message on stderr."""
    try:
        asyncio.run(main())
    except Failure as failure:
        print(str(failure), file=sys.stderr, flush=True)
        sys.exit(1)
