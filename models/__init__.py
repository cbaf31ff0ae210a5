"""Model weights: the manifest, fetching from package registries, the local cache."""

from .bundle import pose_landmarker_bundle
from .manifest import VARIANTS, Manifest, ModelFile, load_manifest
from .store import FileStatus, ModelStore, default_store

__all__ = [
    "VARIANTS",
    "FileStatus",
    "Manifest",
    "ModelFile",
    "ModelStore",
    "default_store",
    "load_manifest",
    "pose_landmarker_bundle",
]
