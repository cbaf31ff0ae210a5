"""One settings object, read from `TELEREHAB_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field
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
    auto_fetch: bool = Field(
        default=True,
        description="Download missing weights on first use (TELEREHAB_AUTO_FETCH=0 to forbid).",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read from the environment on first call."""
    return Settings()
