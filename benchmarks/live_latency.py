"""Live-session latency and capacity: real aiortc clients stream a shared clip
(640x480, 30 fps, looped) into a real server over loopback WebRTC.

    python benchmarks/live_latency.py [--clip FILE] [--seconds 15]
        [--configs lite:1 full:1 lite:2 lite:3 lite:4 lite:5] [--max-people N]
        [--backend mediapipe|blazepose] [--[no-]batch] [--client-fps 30]
        [--client-encode] [--clients-here] [--out FILE.json]

Real patients encode and stream from their own devices: the clients run in a
process of their own and send the clip encoded beforehand (VP8, 1 Mbit/s,
real-time settings, a key frame every 2 s, as a webcam's browser would), so
this machine's cores go to the server and the loopback. `--client-encode`:
each client encodes every frame as it sends it, on this machine's cores (as
before 2026-12-07, stop 21); `--clients-here`: the clients in the server's
process, sharing its GIL (as before stop 20).

Glass-to-feedback latency is measured at the client: from the moment a frame
is handed to the client's sender (its encoder, with `--client-encode`) to the
moment its `pose` message arrives back on the DataChannel. It is matched by
media time: the server stamps each result with the frame's time since the
first frame of the stream.

Per configuration (model variant : concurrent sessions) it prints p50 / p95
latency, the effective result rate per session and the share of frames the
server dropped (latest frame wins). A session "holds" at >= 15 results/s with
p95 < 250 ms. The clients' packets still cost this machine its share of
the loopback, DTLS/SRTP and DataChannel work on both ends.
Not a test: the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import multiprocessing
import platform
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CLIP = REPO.parent / "shared" / "data" / "clips" / "squat_side_yuyoujiang.mp4"
FPS = 30
HOLD_FPS, HOLD_P95_MS = 15.0, 250.0


def _frames(clip: Path) -> list[np.ndarray]:
    """The clip as 640x480 YUV frames (decoded once, looped while streaming)."""
    import av

    with av.open(str(clip)) as src:
        return [f.reformat(width=640, height=480, format="yuv420p").to_ndarray()
                for f in src.decode(video=0)]  # fmt: skip


def _encoded(frames: list[np.ndarray], fps: float) -> list[bytes]:
    """The frames a client sends at `fps`, encoded once as a webcam's browser
    would (VP8, 1 Mbit/s, real-time, a key frame every 2 s and on the first)."""
    import av

    shown = [frames[int(n * FPS / fps)] for n in range(int(len(frames) * fps / FPS))]
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = 640, 480, "yuv420p"
    codec.time_base = fractions.Fraction(1, round(fps))
    codec.bit_rate = 1_000_000
    codec.gop_size = round(2 * fps)
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    out: list[bytes] = []
    for n, yuv in enumerate(shown):
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        frame.pts = n
        out += [bytes(p) for p in codec.encode(frame)]
    out += [bytes(p) for p in codec.encode(None)]
    if len(out) != len(shown):
        raise RuntimeError(f"{len(shown)} frames encoded into {len(out)} packets")
    return out


def _track(frames: list[np.ndarray], sent: dict[int, float], fps: float,
           packets: list[bytes] | None = None):  # fmt: skip
    import av
    from aiortc.mediastreams import MediaStreamTrack

    class ClipTrack(MediaStreamTrack):
        """`fps` frames a second of the clip's 30 fps (every second frame at
        15), paced in real time, as frames for aiortc's encoder or as packets
        encoded beforehand; remembers when each frame left."""

        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            self.n = 0
            self.t0: float | None = None

        async def recv(self):
            if self.t0 is None:
                self.t0 = time.monotonic()
            due = self.t0 + self.n / fps
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if packets is not None:  # encoded beforehand: aiortc packs it as it is
                frame = av.Packet(packets[self.n % len(packets)])
            else:
                shown = frames[int(self.n * FPS / fps) % len(frames)]
                frame = av.VideoFrame.from_ndarray(shown, format="yuv420p")
            frame.pts = round(self.n * 90000 / fps)
            frame.time_base = fractions.Fraction(1, 90000)
            sent[self.n] = time.monotonic()
            self.n += 1
            return frame

    return ClipTrack()


async def _session(base: str, email: str, frames, seconds: float, fps: float,
                   packets: list[bytes] | None) -> dict:  # fmt: skip
    import httpx
    from aiortc import RTCPeerConnection, RTCSessionDescription

    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        r = await c.post("/api/auth/login", json={"email": email, "password": "benchmark-pw-1",
                                                   "kind": "bearer"})  # fmt: skip
        c.headers["Authorization"] = f"Bearer {r.json()['token']}"
        sid = (await c.post("/api/live/sessions", json={})).json()["id"]
        while (await c.get(f"/api/live/sessions/{sid}")).json()["state"] != "ready":
            await asyncio.sleep(0.1)
        sent: dict[int, float] = {}
        latencies: list[float] = []
        results = 0
        pc = RTCPeerConnection()
        channel = pc.createDataChannel("results")
        started = time.monotonic()

        def on_message(raw: str) -> None:
            nonlocal results
            m = json.loads(raw)
            if m["type"] != "pose" or time.monotonic() - started < 2.0:  # skip warm-up
                return
            results += 1
            n = round(m["t_s"] * fps)
            if n in sent:
                latencies.append((time.monotonic() - sent[n]) * 1000)

        channel.on("message", on_message)
        pc.addTrack(_track(frames, sent, fps, packets))
        await pc.setLocalDescription(await pc.createOffer())
        offer = {"sdp": pc.localDescription.sdp, "type": "offer"}
        answer = (await c.post(f"/api/live/sessions/{sid}/offer", json=offer)).json()
        await pc.setRemoteDescription(RTCSessionDescription(**answer))
        await asyncio.sleep(seconds + 2.0)
        status = (await c.get(f"/api/live/sessions/{sid}")).json()
        await c.post(f"/api/live/sessions/{sid}/end", json={})
        await pc.close()
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {
        "results_per_s": results / seconds,
        "p50_ms": float(np.nanpercentile(lat, 50)),
        "p95_ms": float(np.nanpercentile(lat, 95)),
        "received": status["received"],
        "dropped": status["dropped"],
        "dropped_share": status["dropped"] / max(1, status["received"]),
        "server_p50_ms": status["latency_ms_p50"],
    }


def _clients(base: str, n: int, frames, seconds: float, fps: float,
             encode: bool = False) -> list[dict]:  # fmt: skip
    """`n` patients' sessions at once, each streaming `frames` (or the clip
    at that path, decoded here) at `fps`, encoded beforehand (`encode`: by
    aiortc as they go); their measurements."""
    if isinstance(frames, Path):
        frames = _frames(frames)
    packets = None if encode else _encoded(frames, fps)

    async def run() -> list[dict]:
        return list(await asyncio.gather(*(
            _session(base, f"p{k}@bench.org", frames, seconds, fps, packets) for k in range(n)
        )))  # fmt: skip

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    from telerehab.server import accounts, prescriptions
    from telerehab.server.app import create_app
    from telerehab.server.db import open_database
    from telerehab.settings import Settings

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    p.add_argument("--seconds", type=float, default=15.0)
    configs = ["lite:1", "full:1", "lite:2", "lite:3", "lite:4", "lite:5"]
    p.add_argument("--configs", nargs="+", default=configs)

    shipped = Settings.model_fields  # the defaults a fresh install runs with
    p.add_argument(
        "--max-people",
        type=int,
        default=shipped["live_max_people"].default,
        help="people the live model looks for (default: the shipped setting)",
    )
    p.add_argument("--backend", choices=["mediapipe", "blazepose"],
                   default=shipped["pose_backend"].default)  # fmt: skip
    p.add_argument("--batch", action=argparse.BooleanOptionalAction,
                   default=shipped["live_batch"].default,
                   help="blazepose: one batched backend for all sessions (default: the "
                        "shipped setting); --no-batch: one per session")  # fmt: skip
    p.add_argument("--client-fps", type=float, default=FPS,
                   help="frames a second per client (the clip keeps its speed)")  # fmt: skip
    p.add_argument("--client-encode", action="store_true",
                   help="the clients encode every frame as they send it (on this machine's "
                        "cores) instead of sending the clip encoded beforehand")  # fmt: skip
    p.add_argument("--clients-here", action="store_true",
                   help="run the clients in the server's process (they share its GIL)")  # fmt: skip
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "live_latency.json")
    args = p.parse_args(argv)
    frames = _frames(args.clip)
    most = max(int(c.split(":")[1]) for c in args.configs)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        db = open_database(f"sqlite:///{tmp}/bench.db")
        with db.session() as s:
            for k in range(most):
                user = accounts.create_user(s, f"p{k}@bench.org", f"P{k}", "patient",
                                            "benchmark-pw-1")  # fmt: skip
                squats = [{"exercise": "squat", "sets": 1, "reps": 100}]
                program = {"title": "Benchmark", "sessions_per_week": 3, "exercises": squats}
                prescriptions.create_program(s, user.id, program, None)
        for config in args.configs:
            variant, n = config.split(":")
            settings = Settings(data_dir=Path(tmp), live_variant=variant,
                                live_max_people=args.max_people,
                                pose_backend=args.backend,
                                live_batch=args.batch)  # fmt: skip
            app = create_app(settings, db)
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                                   log_level="warning"))  # fmt: skip
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            while not server.started:
                time.sleep(0.05)

            base = f"http://127.0.0.1:{port}"
            if args.clients_here:
                sessions = _clients(base, int(n), frames, args.seconds, args.client_fps,
                                    args.client_encode)  # fmt: skip
            else:  # the patients' devices: a process of their own, as they would be
                with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as ex:
                    job = (base, int(n), args.clip, args.seconds, args.client_fps,
                           args.client_encode)  # fmt: skip
                    sessions = ex.submit(_clients, *job).result()
            server.should_exit = True
            thread.join(15)
            row = {
                "variant": variant, "sessions": int(n), "client_fps": args.client_fps,
                "results_per_s": float(np.mean([s["results_per_s"] for s in sessions])),
                "p50_ms": float(np.mean([s["p50_ms"] for s in sessions])),
                "p95_ms": float(np.max([s["p95_ms"] for s in sessions])),
                "dropped_share": float(np.mean([s["dropped_share"] for s in sessions])),
                "per_session": sessions,
            }  # fmt: skip
            row["holds"] = row["results_per_s"] >= HOLD_FPS and row["p95_ms"] < HOLD_P95_MS
            rows.append(row)
            print(f"{variant:5s} x{n}: {row['results_per_s']:5.1f} results/s per session, "
                  f"p50 {row['p50_ms']:6.1f} ms, p95 {row['p95_ms']:6.1f} ms, dropped "
                  f"{row['dropped_share']:.0%}, holds {row['holds']}", flush=True)  # fmt: skip
        db.close()
    print(f"\n{'model':6s} {'sessions':>8s} {'results/s':>10s} {'p50 ms':>8s} {'p95 ms':>8s} "
          f"{'dropped':>8s} {'holds':>6s}")  # fmt: skip
    for r in rows:
        print(f"{r['variant']:6s} {r['sessions']:8d} {r['results_per_s']:10.1f} {r['p50_ms']:8.1f} "
              f"{r['p95_ms']:8.1f} {r['dropped_share']:8.0%} {r['holds']!s:>6s}")  # fmt: skip
    holding = [r["sessions"] for r in rows if r["variant"] == "lite" and r["holds"]]
    print(
        f"\nmost concurrent lite sessions holding >= {HOLD_FPS:g}/s with p95 < "
        f"{HOLD_P95_MS:g} ms: {max(holding, default=0)}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {platform.processor()}",
        "clip": str(args.clip), "seconds": args.seconds, "max_people": args.max_people,
        "backend": args.backend, "batch": args.batch, "client_fps": args.client_fps,
        "client_encode": args.client_encode, "clients_here": args.clients_here,
        "rows": rows,
    }, indent=1))  # fmt: skip
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
