"""Neural-network runtimes behind one interface: a float32 batch in, outputs out.

- `LiteRTRuntime`: the pinned TFLite files under `ai-edge-litert` (XNNPACK,
  2 threads by default). Batch 1 per call (the graphs hard-code it), so a
  batch is run image by image. The default on CPU.
- `OnnxRuntime`: ONNX files the project derives from the same TFLite files
  (`telerehab.models.onnx_export`), dynamic batch, CPU or CUDA execution
  provider. Batches pay across streams and on GPUs, not on a 2-core CPU.

Both return the model's outputs as a tuple of arrays with a leading batch
axis, in the model's output order. Callers pick outputs by shape, never by
position, so both runtimes can serve the same pipeline.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from telerehab.errors import ConfigError, ModelError, PoseError

logger = logging.getLogger(__name__)

RUNTIMES = ("litert", "onnxruntime")
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


@runtime_checkable
class Runtime(Protocol):
    """One loaded network.

    input_shape: (H, W, C) of one image. max_batch: images per native call
    (1 where the runtime loops). `__call__` takes (N, H, W, C) float32 and
    returns the outputs, each (N, ...) float32.
    """

    name: str
    input_shape: tuple[int, int, int]
    max_batch: int

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, ...]: ...

    def close(self) -> None: ...


def default_threads() -> int:
    """Threads per network: the cores this process may use, at most 4."""
    return max(1, min(4, len(os.sched_getaffinity(0))))


def _check_batch(batch: np.ndarray, shape: tuple[int, int, int], model: Path) -> np.ndarray:
    if batch.ndim != 4 or tuple(batch.shape[1:]) != shape:
        raise PoseError(
            f"{model.name}: expected input (N, {', '.join(map(str, shape))}), got {batch.shape}"
        )
    return np.ascontiguousarray(batch, dtype=np.float32)


class LiteRTRuntime:
    """A TFLite model under LiteRT's interpreter (one call per image)."""

    name = "litert"
    max_batch = 1

    def __init__(self, model: Path, threads: int | None = None) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise ConfigError(
                "the litert runtime needs ai-edge-litert: pip install 'ai-edge-litert>=2.3'"
            ) from exc
        self.model = Path(model)
        self.threads = threads or default_threads()
        from .mediapipe_backend import quiet_native_stderr

        try:
            with quiet_native_stderr():  # LiteRT announces its XNNPACK delegate on stderr
                self._it = Interpreter(model_path=str(self.model), num_threads=self.threads)
                self._it.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{self.model}: LiteRT cannot load this model ({exc})") from exc
        inp = self._it.get_input_details()[0]
        self._in = inp["index"]
        self.input_shape = tuple(int(v) for v in inp["shape"][1:])
        self._out = [d["index"] for d in self._it.get_output_details()]
        self._lock = threading.Lock()

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        batch = _check_batch(batch, self.input_shape, self.model)
        per_image = []
        with self._lock:
            for image in batch:
                self._it.set_tensor(self._in, image[None])
                self._it.invoke()
                per_image.append([self._it.get_tensor(i) for i in self._out])
        if len(per_image) == 1:
            return tuple(per_image[0])
        return tuple(np.concatenate(parts) for parts in zip(*per_image, strict=True))

    def close(self) -> None:
        """Drop the interpreter."""
        self._it = None


class OnnxRuntime:
    """An ONNX model under ONNX Runtime, dynamic batch, CPU or CUDA."""

    name = "onnxruntime"

    def __init__(
        self,
        model: Path,
        threads: int | None = None,
        device: str = "cpu",
        max_batch: int = 64,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ConfigError(
                "the onnxruntime runtime needs onnxruntime: pip install 'telerehab[onnx]' "
                "(onnxruntime-gpu for CUDA)"
            ) from exc
        if device not in PROVIDERS:
            raise ConfigError(f"unknown device {device!r}: expected one of {', '.join(PROVIDERS)}")
        wanted = PROVIDERS[device]
        if wanted not in ort.get_available_providers():
            raise ConfigError(
                f"device {device!r}: ONNX Runtime here offers only "
                f"{', '.join(ort.get_available_providers())} (for CUDA install onnxruntime-gpu)"
            )
        self.model = Path(model)
        self.threads = threads or default_threads()
        self.max_batch = max_batch
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # Spinning worker threads starve everything else on a busy 2-core machine
        # (measured: full model 99 ms with spinning, 26 ms without, 2 threads).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        providers = [wanted] + (["CPUExecutionProvider"] if device != "cpu" else [])
        try:
            self._session = ort.InferenceSession(str(self.model), opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own unrelated types
            raise ModelError(f"{self.model}: ONNX Runtime cannot load this model ({exc})") from exc
        inp = self._session.get_inputs()[0]
        self._in = inp.name
        self.input_shape = tuple(int(v) for v in inp.shape[1:])
        self.device = device

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        batch = _check_batch(batch, self.input_shape, self.model)
        if len(batch) <= self.max_batch:
            return tuple(self._session.run(None, {self._in: batch}))
        parts = [
            self._session.run(None, {self._in: batch[i : i + self.max_batch]})
            for i in range(0, len(batch), self.max_batch)
        ]
        return tuple(np.concatenate(p) for p in zip(*parts, strict=True))

    def close(self) -> None:
        """Drop the session."""
        self._session = None


def create_runtime(name: str, model: Path, **options: object) -> Runtime:
    """A runtime by name on `model` (a .tflite for litert, a .onnx for onnxruntime)."""
    if name == "litert":
        return LiteRTRuntime(model, **options)  # type: ignore[arg-type]
    if name == "onnxruntime":
        return OnnxRuntime(model, **options)  # type: ignore[arg-type]
    raise ConfigError(f"unknown runtime {name!r}: expected one of {', '.join(RUNTIMES)}")
