"""One settings object, read from `TELEREHAB_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

APP_NAME = "telerehab"
ModelVariant = Literal["lite", "full", "heavy"]


class Settings(BaseSettings):
    """Process-wide configuration. Build it once with `get_settings()`."""

    model_config = SettingsConfigDict(
        env_prefix="TELEREHAB_", extra="ignore", env_ignore_empty=True
    )

    model_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_cache_dir(APP_NAME)) / "models",
        description="Folder holding verified model weights (TELEREHAB_MODEL_DIR).",
    )
    model_variant: ModelVariant = Field(
        default="full", description="BlazePose landmark model used when none is named."
    )
    pose_backend: Literal["blazepose", "mediapipe"] = Field(
        default="mediapipe",
        description="Pose backend (TELEREHAB_POSE_BACKEND): mediapipe (MediaPipe Tasks, the "
        "reference and default until blazepose holds parity on every shared clip) or "
        "blazepose (the project's own pipeline on LiteRT / ONNX Runtime).",
    )
    pose_runtime: Literal["litert", "onnxruntime"] = Field(
        default="litert",
        description="Runtime of the blazepose backend (TELEREHAB_POSE_RUNTIME): litert "
        "(CPU default) or onnxruntime (batched, CPU or CUDA).",
    )
    pose_device: Literal["cpu", "cuda"] = Field(
        default="cpu", description="Device of the onnxruntime runtime (TELEREHAB_POSE_DEVICE)."
    )
    auto_fetch: bool = Field(
        default=True,
        description="Download missing weights on first use (TELEREHAB_AUTO_FETCH=0 to forbid).",
    )
    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir(APP_NAME)),
        description="Folder of the default SQLite database (TELEREHAB_DATA_DIR).",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL (TELEREHAB_DATABASE_URL), e.g. "
        "postgresql+psycopg://user:password@host/db; empty: SQLite in data_dir.",
    )
    database_connect_timeout_s: float = Field(
        default=5,
        gt=0,
        le=300,
        description="Longest wait to connect to the database or for a pooled connection "
        "(SQLite: for its write lock); then requests answer 503 with Retry-After.",
    )
    database_statement_timeout_s: float = Field(
        default=30,
        gt=0,
        le=3600,
        description="PostgreSQL cancels a statement running longer (a lock held elsewhere, "
        "a database that hangs); the request answers 503 with Retry-After.",
    )
    live_pending_writes: int = Field(
        default=10_000,
        ge=1,
        description="Writes of live sessions (repetitions, sets, their end) a process keeps "
        "while the database is unavailable, retried until it is back; a write beyond is "
        "refused, logged and counted as lost.",
    )
    host: str = Field(default="127.0.0.1", description="Address `telerehab serve` listens on.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port `telerehab serve` uses.")
    secure_cookies: bool = Field(
        default=False,
        description="Mark login cookies Secure (TELEREHAB_SECURE_COOKIES=1 behind HTTPS).",
    )
    session_hours: float = Field(
        default=12, gt=0, le=24 * 30, description="How long a login lasts, in hours."
    )
    max_logins_per_user: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="Logins (cookies and tokens) a user may hold at once; a new one "
        "ends the oldest.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body accepted (413 beyond), checked before parsing and auth.",
    )
    max_upload_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="Largest demonstration video a therapist may upload to learn an exercise "
        "from (TELEREHAB_MAX_UPLOAD_BYTES; 413 beyond).",
    )
    login_free_failures: int = Field(
        default=5, ge=1, description="Failed logins an account may make before it must wait."
    )
    login_free_failures_per_address: int = Field(
        default=20, ge=1, description="Failed logins a client address may make before it must wait."
    )
    login_delay_s: float = Field(
        default=1, gt=0, description="First wait after the free failures; it doubles each failure."
    )
    login_lockout_s: float = Field(
        default=900, gt=0, description="Longest wait (a temporary lockout), in seconds."
    )
    password_hashes_at_once: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Password hashes computed at once (argon2id: about 64 MiB each).",
    )
    allowed_origins: str = Field(
        default="",
        description="Comma-separated origins (https://host:port) whose pages may open the "
        "WebSocket besides the server's own.",
    )

    live_variant: ModelVariant = Field(
        default="lite", description="BlazePose model of live sessions (latency first)."
    )
    live_max_people: int = Field(
        default=4,
        ge=1,
        le=8,
        description="People the live pose model looks for; 1 tracks from frame to frame "
        "and runs the person detector only when tracking is lost (about half the cost).",
    )
    live_batch: bool = Field(
        default=True,
        description="With pose_backend=blazepose: one pose backend for all live sessions, "
        "their latest frames run in batches on one thread (TELEREHAB_LIVE_BATCH; 0: a "
        "backend per session, on the session's own thread). On a CPU it keeps latency "
        "bounded as sessions grow (N sessions' threads no longer starve the event loop "
        "that receives their video); on a GPU one batched call costs about one image.",
    )
    live_camera_check_s: float = Field(
        default=1.0,
        ge=0,
        le=10,
        description="A live session counts once the landmarks its exercise needs have been in "
        "the picture this long, and pauses counting while they are out of it "
        "(TELEREHAB_LIVE_CAMERA_CHECK_S; 0: no check).",
    )
    resume_window_s: float = Field(
        default=600, ge=0, description="How long an interrupted live session may be resumed."
    )
    live_max_sessions: int = Field(
        default=8,
        ge=1,
        le=1000,
        description="Live sessions one server process holds at once, interrupted ones still "
        "resumable included (each has a worker thread and a pose model); one more start is "
        "refused with 503 and Retry-After (TELEREHAB_LIVE_MAX_SESSIONS).",
    )
    live_max_viewers: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="Therapists' WebSocket feeds, and apart from them video watchers, of one "
        "live session in one server process; one more is refused (WebSocket close 1013, "
        "watch 429 with Retry-After) (TELEREHAB_LIVE_MAX_VIEWERS).",
    )
    shutdown_timeout_s: float = Field(
        default=10,
        gt=0,
        le=600,
        description="How long a stopping server (SIGTERM, Ctrl+C) waits for its live sessions "
        "and open connections before it cancels them (TELEREHAB_SHUTDOWN_TIMEOUT_S).",
    )
    redis_url: str = Field(
        default="",
        description="Redis for fan-out of live sessions between server processes "
        "(TELEREHAB_REDIS_URL, e.g. redis://127.0.0.1:6379/0); empty: one process.",
    )
    redis_prefix: str = Field(default="telerehab", description="Prefix of the Redis keys.")
    redis_timeout_s: float = Field(
        default=2,
        gt=0,
        le=60,
        description="Longest wait for Redis to connect or answer a command; beyond, the call "
        "fails, and live sessions go on in their process (TELEREHAB_REDIS_TIMEOUT_S).",
    )
    redis_ttl_s: float = Field(
        default=15,
        gt=0,
        le=3600,
        description="A server process renews its heartbeat in Redis every third of this; a "
        "process silent this long (killed, crashed, cut off) is dead to the others: its "
        "sessions leave therapists' lists and the next start records them as interrupted "
        "(TELEREHAB_REDIS_TTL_S).",
    )
    redis_forward_timeout_s: float = Field(
        default=10,
        gt=0,
        le=300,
        description="Longest wait for the server process holding a live session to answer a "
        "control request (offer, pause, end...) forwarded to it through Redis; beyond, 503 "
        "with Retry-After (TELEREHAB_REDIS_FORWARD_TIMEOUT_S).",
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Server processes `telerehab serve` starts on one port (TELEREHAB_WORKERS "
        "or --workers); more than one needs redis_url.",
    )
    ice_servers: str = Field(
        default="", description="Comma-separated STUN/TURN URLs for WebRTC (none on a LAN)."
    )
    pseudonym_key: SecretStr | None = Field(
        default=None,
        description="Key of the patient pseudonyms in exports (TELEREHAB_PSEUDONYM_KEY, at "
        "least 32 characters; give every server process the same one); unset: a random key "
        "kept in data_dir/pseudonym.key.",
        min_length=32,
    )

    @property
    def resolved_database_url(self) -> str:
        """`database_url`, or the default SQLite file in `data_dir`."""
        return self.database_url or f"sqlite:///{self.data_dir / 'telerehab.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read from the environment on first call."""
    return Settings()
