"""WebRTC with aiortc: the patient's camera in, results out on a DataChannel,
and (only with the patient's consent in this session) the video relayed to a
watching therapist.

SDP offer / answer goes over HTTP. ICE servers come from the settings (none
are needed on loopback or a LAN).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

from .live import LiveSession

logger = logging.getLogger(__name__)


def ice_configuration(urls: str) -> RTCConfiguration:
    """`TELEREHAB_ICE_SERVERS`: comma-separated STUN/TURN URLs (empty: none)."""
    servers = [RTCIceServer(urls=u.strip()) for u in urls.split(",") if u.strip()]
    return RTCConfiguration(iceServers=servers)


@dataclass
class PeerSet:
    """The peer connections of one live session (patient and watchers)."""

    patient: RTCPeerConnection | None = None
    watchers: list[RTCPeerConnection] = field(default_factory=list)
    relay: MediaRelay = field(default_factory=MediaRelay)
    consumer: asyncio.Task | None = None

    def open_watchers(self) -> int:
        """Watchers still connected (those closed or failed are let go)."""
        self.watchers = [pc for pc in self.watchers
                         if pc.connectionState not in ("closed", "failed")]  # fmt: skip
        return len(self.watchers)

    async def close(self) -> None:
        if self.consumer is not None:
            self.consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.consumer
        for pc in [self.patient, *self.watchers]:
            if pc is not None:
                await pc.close()
        self.patient, self.watchers = None, []


async def _consume(track: Any, live: LiveSession) -> None:
    """Hand every decoded frame to the session (decoding happens in aiortc's
    own decoder thread; conversion and inference in the session's worker)."""
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        pts = float(frame.pts * frame.time_base) if frame.pts is not None else time.monotonic()
        live.submit(frame, pts)


async def answer_patient(
    live: LiveSession, peers: PeerSet, offer: dict, config: RTCConfiguration
) -> dict:
    """Accept the patient's offer: their video track feeds the session; the
    DataChannel they open receives every message."""
    pc = RTCPeerConnection(configuration=config)

    def send_to(channel: Any) -> Any:
        def listener(msg: dict) -> None:
            if channel.readyState == "open":
                channel.send(json.dumps(msg, separators=(",", ":")))

        return listener

    @pc.on("datachannel")
    def on_datachannel(channel: Any) -> None:
        listener = send_to(channel)
        live.listeners.append(listener)

        @channel.on("open")
        def on_open() -> None:
            for msg in list(live.history):
                listener(msg)

        if channel.readyState == "open":
            on_open()

        @channel.on("close")
        def on_close() -> None:
            if listener in live.listeners:
                live.listeners.remove(listener)

    @pc.on("track")
    def on_track(track: Any) -> None:
        if track.kind != "video":
            return
        if live.video_consent:
            live.relay_track = track  # watchers subscribe to it through the relay
            peers.consumer = asyncio.ensure_future(
                _consume(peers.relay.subscribe(track, buffered=False), live)
            )
        else:
            peers.consumer = asyncio.ensure_future(_consume(track, live))

    @pc.on("connectionstatechange")
    async def on_state() -> None:
        logger.info("session %s: patient connection %s", live.session_id, pc.connectionState)
        if pc.connectionState in ("failed", "closed") and peers.patient is pc:
            await asyncio.to_thread(live.interrupt)  # writes the record: off the loop

    # Negotiated before it replaces anything: a bad offer (SdpError) leaves the
    # session and its current connection as they were.
    await _negotiate(pc, offer)
    old, peers.patient = peers.patient, pc  # a reconnect replaces the old connection
    if old is not None:
        await old.close()
    return {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}


async def _negotiate(pc: RTCPeerConnection, offer: dict) -> None:
    lines = offer["sdp"].replace("\r\n", "\n").split("\n")
    if not lines or lines[0] != "v=0" or not any(line.startswith("m=video") for line in lines):
        await pc.close()
        raise SdpError("invalid SDP offer: expected an SDP (v=0) with a video section (m=video)")
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type=offer["type"]))
        await pc.setLocalDescription(await pc.createAnswer())
    except Exception as exc:
        # The offer is the client's text: aiortc signals a malformed one with
        # whatever its parser hit (ValueError, KeyError, AttributeError, a
        # RuntimeError from a generator, AssertionError). Each is the client's
        # error, named to them and logged, never a server error.
        await pc.close()
        logger.info("SDP offer refused: %s: %s", type(exc).__name__, exc)
        why = str(exc) or type(exc).__name__
        raise SdpError(f"invalid SDP offer: {why[:120]}") from None


class SdpError(ValueError):
    """The client's SDP offer could not be used."""


async def answer_watcher(
    live: LiveSession, peers: PeerSet, offer: dict, config: RTCConfiguration
) -> dict:
    """A therapist's receive-only connection with the patient's relayed video."""
    pc = RTCPeerConnection(configuration=config)
    peers.watchers.append(pc)
    if live.relay_track is not None:
        pc.addTrack(peers.relay.subscribe(live.relay_track, buffered=False))
    await _negotiate(pc, offer)
    return {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}
