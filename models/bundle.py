"""Assemble a MediaPipe Tasks PoseLandmarker bundle from the fetched raw weights.

The npm package ships bare TFLite graphs; the Tasks API refuses a float input
tensor without TFLite metadata saying how pixels are normalised. We write that
metadata ourselves with the flatbuffers schemas MediaPipe ships
(``mediapipe/tasks/metadata/*_py_generated.py``): an RGB image input with
NormalizationOptions (mean/std 127.5/127.5 -> [-1, 1] for the detector, 0/255 ->
[0, 1] for the landmark models, as in MediaPipe's own pose graphs) and one
feature entry per output tensor. The two models then go, uncompressed and with a
fixed timestamp, into a zip named as the Tasks API expects.
"""

from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

from telerehab.errors import ModelError

from .manifest import ModelFile
from .registry import ProgressFactory
from .store import ModelStore, derived_file

logger = logging.getLogger(__name__)

BUNDLE_FORMAT = 1  # bump when the metadata written here changes
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class _Normalization:
    mean: float
    std: float
    n_outputs: int
    description: str


_DETECTOR = _Normalization(127.5, 127.5, 2, "BlazePose detector, input in [-1, 1]")
_LANDMARKS = _Normalization(0.0, 255.0, 5, "BlazePose landmarks, input in [0, 1]")


def _metadata_flatbuffer(norm: _Normalization, name: str) -> bytes:
    import flatbuffers
    from mediapipe.tasks.metadata import metadata_schema_py_generated as md

    image = md.TensorMetadataT()
    image.name = "image"
    image.content = md.ContentT()
    image.content.contentPropertiesType = md.ContentProperties.ImageProperties
    props = md.ImagePropertiesT()
    props.colorSpace = md.ColorSpaceType.RGB
    image.content.contentProperties = props
    unit = md.ProcessUnitT()
    unit.optionsType = md.ProcessUnitOptions.NormalizationOptions
    unit.options = md.NormalizationOptionsT()
    unit.options.mean = [norm.mean]
    unit.options.std = [norm.std]
    image.processUnits = [unit]
    image.stats = md.StatsT()
    image.stats.max = [(255.0 - norm.mean) / norm.std]
    image.stats.min = [(0.0 - norm.mean) / norm.std]

    outputs = []
    for i in range(norm.n_outputs):
        out = md.TensorMetadataT()
        out.name = f"output_{i}"
        out.content = md.ContentT()
        out.content.contentPropertiesType = md.ContentProperties.FeatureProperties
        out.content.contentProperties = md.FeaturePropertiesT()
        outputs.append(out)

    subgraph = md.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [image]
    subgraph.outputTensorMetadata = outputs
    model = md.ModelMetadataT()
    model.name = name
    model.description = norm.description
    model.license = "Apache-2.0"
    model.minParserVersion = "1.0.0"
    model.subgraphMetadata = [subgraph]
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), b"M001")
    return bytes(builder.Output())


def with_metadata(tflite: bytes, norm: _Normalization, name: str) -> bytes:
    """`tflite` with a TFLITE_METADATA buffer describing its input and outputs."""
    import flatbuffers
    from mediapipe.tasks.metadata import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(tflite, 0))
    buffer = schema.BufferT()
    buffer.data = list(_metadata_flatbuffer(norm, name))
    model.buffers = model.buffers or []
    model.metadata = [m for m in (model.metadata or []) if m.name != b"TFLITE_METADATA"]
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = "TFLITE_METADATA"
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    builder = flatbuffers.Builder(len(tflite) + 4096)
    builder.Finish(model.Pack(builder), b"TFL3")
    return bytes(builder.Output())


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def pose_landmarker_bundle(
    store: ModelStore,
    variant: str,
    *,
    fetch: bool = True,
    progress: ProgressFactory | None = None,
) -> Path:
    """Path of the verified PoseLandmarker `.task` bundle for `variant`.

    The bundle is rebuilt whenever its sources or this module's format change,
    and its own digest is recorded beside it and checked on every use.
    """
    detector = store.manifest.detector()
    landmarks = store.manifest.landmarks(variant)
    det_path, lm_path = store.require(detector, landmarks, fetch=fetch, progress=progress)

    bundle = store.root / "bundles" / f"pose_landmarker_{variant}.task"

    def build() -> tuple[bytes, dict]:
        logger.info("building %s", bundle)
        return build_bundle(det_path, detector, lm_path, landmarks), {}

    wanted = {"format": BUNDLE_FORMAT, "detector": detector.sha256, "landmarks": landmarks.sha256}
    return derived_file(bundle, wanted, build)


def build_bundle(det_path: Path, detector: ModelFile, lm_path: Path, landmarks: ModelFile) -> bytes:
    """The `.task` zip holding both models with metadata."""
    try:
        det = with_metadata(det_path.read_bytes(), _DETECTOR, detector.name)
        lms = with_metadata(lm_path.read_bytes(), _LANDMARKS, landmarks.name)
    except (ValueError, IndexError, TypeError) as exc:  # a flatbuffer that does not parse
        raise ModelError(f"{lm_path} or {det_path}: not a TFLite model ({exc})") from exc
    return _zip({"pose_detector.tflite": det, "pose_landmarks_detector.tflite": lms})
