"""Landmark models without their segmentation branch, derived from the pinned files.

The BlazePose landmark models also compute a 256x256 person mask that
telerehab never uses: 46 of the full model's 332 operators, about a third of
its time (full model, LiteRT, 2 threads: 18.5 -> 12 ms; ONNX Runtime
22 -> 11 ms). MediaPipe runs it even when no mask is asked for. Here the mask
output is dropped and every operator that only fed it is removed; the other
outputs are bit-identical, which is checked on a test image when the file is
built. The file's SHA-256 is recorded beside it (`<name>.json`) and checked on
every use; the rewrite is deterministic, so the expected digest is also pinned
in `manifest.toml` (`pruned_sha256`); a different one (another flatbuffers
version) is logged.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from telerehab.errors import ModelError

from .manifest import ModelFile
from .store import ModelStore, derived_file

logger = logging.getLogger(__name__)

FORMAT = 1
SEGMENTATION_SHAPE = (1, 256, 256, 1)


def landmarks_without_segmentation(store: ModelStore, file: ModelFile) -> Path:
    """Path of the verified landmark model `file` without its mask output."""
    (source,) = store.require(file, fetch=True)
    out = store.root / "derived" / (Path(file.name).stem + "_noseg.tflite")

    def build() -> tuple[bytes, dict]:
        data = prune(source)
        _check_same_outputs(source, data)
        digest = hashlib.sha256(data).hexdigest()
        if file.pruned_sha256 and digest != file.pruned_sha256:
            logger.warning(
                "%s: pruned model digest %s differs from the pinned %s (flatbuffers version?); "
                "its outputs equal the original's, so it is used",
                file.name, digest, file.pruned_sha256,
            )  # fmt: skip
        logger.info("built %s (segmentation branch removed)", out)
        return data, {}

    wanted = {"format": FORMAT, "source": file.name, "source_sha256": file.sha256}
    return derived_file(out, wanted, build)


def prune(source: Path) -> bytes:
    """The TFLite model without its (1, 256, 256, 1) output and the operators only it needs."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as tfl

    try:
        model = tfl.ModelT.InitFromPackedBuf(source.read_bytes(), 0)
        graph = model.subgraphs[0]
    except Exception as exc:  # flatbuffers raises plain errors on garbage
        raise ModelError(f"{source}: not a TFLite model ({exc})") from exc
    keep = [o for o in graph.outputs if tuple(graph.tensors[o].shape) != SEGMENTATION_SHAPE]
    if len(keep) != len(graph.outputs) - 1:
        raise ModelError(f"{source}: expected one {SEGMENTATION_SHAPE} output to remove")
    needed = set(keep)
    operators = []
    for op in reversed(graph.operators):
        if any(o in needed for o in op.outputs):
            operators.append(op)
            needed.update(i for i in op.inputs if i >= 0)
    graph.operators = operators[::-1]
    graph.outputs = keep
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _check_same_outputs(source: Path, data: bytes) -> None:
    """The pruned model's outputs equal the original's (all but the mask)."""
    from ai_edge_litert.interpreter import Interpreter

    from .onnx_export import run_tflite, test_image

    image = test_image((1, 256, 256, 3))
    ref = [o for o in run_tflite(source, image) if o.shape != SEGMENTATION_SHAPE]
    it = Interpreter(model_content=data, num_threads=1)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], image)
    it.invoke()
    got = [it.get_tensor(d["index"]) for d in it.get_output_details()]
    if len(got) != len(ref) or any(not np.array_equal(a, b) for a, b in zip(ref, got, strict=True)):
        raise ModelError(f"{source}: the pruned model's outputs differ from the original's")
