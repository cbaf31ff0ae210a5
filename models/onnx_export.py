"""ONNX files derived from the pinned TFLite weights, by a small converter of our own.

Why our own: `tflite2onnx` 0.4.1 fails on all four BlazePose graphs, and
`tf2onnx` needs TensorFlow (a 1.7 GB install) and emits random initializer
names, so its output cannot be pinned (`../shared/notes/BLAZEPOSE_FACTS.md`).
These graphs use a dozen TFLite operators; each maps to one or two ONNX
operators here. Weights are read through LiteRT itself (float16 DEQUANTIZE
and sparse DENSIFY outputs included, with its delegates off and every tensor
kept), so no sparse format is decoded by hand.

Layout: ONNX convolutions are NCHW, TFLite's NHWC. The graph keeps the
TFLite interface (NHWC input, outputs as in TFLite, same names and order):
the input is transposed once, 4-D tensors stay NCHW inside, and a tensor is
transposed back only before a RESHAPE and at a 4-D output. The batch axis is
dynamic ("N").

Each file is checked against the TFLite original on a fixed test image when
it is built (largest output difference recorded), and its SHA-256 is recorded
beside it (`<name>.onnx.json`) and checked on every use. The conversion is
deterministic, so the expected digests are pinned in `manifest.toml`
(`onnx_sha256`); a different one (another onnx version) is logged.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from telerehab.errors import ConfigError, ModelError

from .manifest import ModelFile
from .store import ModelStore, derived_file

logger = logging.getLogger(__name__)

FORMAT = 2  # bump when the converter's output changes (2: landmark models pruned first)
OPSET = 17
# Largest |ONNX - TFLite| accepted on the test image, relative to each output's
# largest magnitude (at least 1): landmarks are in crop pixels (0..256), the
# unused segmentation logits reach ~1,000 (0.5 apart there, 0.001 px on landmarks).
_TOLERANCE = 2e-3


def onnx_model(store: ModelStore, file: ModelFile) -> Path:
    """Path of the verified ONNX file derived from `file` (built on first use).

    Landmark models are converted from their pruned form (no segmentation
    branch, `telerehab.models.pruned`); the detector as it is.
    """
    if file.role == "landmarks":
        from .pruned import landmarks_without_segmentation

        source = landmarks_without_segmentation(store, file)
    else:
        (source,) = store.require(file, fetch=True)
    out = store.root / "onnx" / (Path(file.name).stem + ".onnx")

    def build() -> tuple[bytes, dict]:
        data = convert(source)
        max_diff = check_against_tflite(source, data)
        digest = hashlib.sha256(data).hexdigest()
        if file.onnx_sha256 and digest != file.onnx_sha256:
            # Another onnx/protobuf version may serialise differently; the outputs
            # were checked above, so the file is used, and the difference is said.
            logger.warning(
                "%s: derived ONNX digest %s differs from the pinned %s (onnx version?); "
                "its outputs match TFLite, so it is used",
                file.name, digest, file.onnx_sha256,
            )  # fmt: skip
        logger.info("built %s (|onnx - tflite| <= %.2g of each output's range)", out, max_diff)
        return data, {"max_rel_diff": max_diff}

    wanted = {"format": FORMAT, "source": file.name, "source_sha256": file.sha256}
    return derived_file(out, wanted, build)


def test_image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A smooth, deterministic (1, H, W, C) float32 image in 0..1 (blurred noise)."""
    rng = np.random.default_rng(seed)
    _, h, w, c = shape
    coarse = rng.random((h // 16 + 2, w // 16 + 2, c))
    ys = np.linspace(0, coarse.shape[0] - 1.001, h)
    xs = np.linspace(0, coarse.shape[1] - 1.001, w)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    img = (
        coarse[y0][:, x0] * (1 - fy) * (1 - fx)
        + coarse[y0 + 1][:, x0] * fy * (1 - fx)
        + coarse[y0][:, x0 + 1] * (1 - fy) * fx
        + coarse[y0 + 1][:, x0 + 1] * fy * fx
    )
    return img[None].astype(np.float32)


def run_tflite(model: Path, image: np.ndarray) -> list[np.ndarray]:
    """Outputs of the TFLite model on `image` (1, H, W, C), in output order."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(model), num_threads=1)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], image)
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


def check_against_tflite(source: Path, data: bytes) -> float:
    """Largest |ONNX - TFLite| over all outputs on the test image, relative to each
    output's largest magnitude (at least 1); raises above tolerance.

    The detector sees the image in [-1, 1], the landmark models in [0, 1].
    """
    import onnxruntime as ort

    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    image = test_image((1, *(int(v) for v in inp.shape[1:])))
    if int(inp.shape[1]) == 224:
        image = image * 2 - 1
    ref = run_tflite(source, image)
    got = sess.run(None, {inp.name: image})
    if len(ref) != len(got):
        raise ModelError(f"{source}: converted model has {len(got)} outputs, TFLite {len(ref)}")
    diff = max(
        float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(a)))))
        for a, b in zip(ref, got, strict=True)
    )
    if not diff <= _TOLERANCE:
        raise ModelError(
            f"{source}: the converted ONNX model differs from the TFLite original by {diff:.3g} "
            f"of an output's range (tolerance {_TOLERANCE}); not used"
        )
    return diff


# --------------------------------------------------------------------------- the converter


def convert(source: Path) -> bytes:
    """The ONNX model (serialized) of a TFLite file that uses only the supported operators."""
    try:
        import onnx
        from ai_edge_litert import schema_py_generated as tfl
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError as exc:
        raise ConfigError(
            "converting to ONNX needs onnx and ai-edge-litert: pip install 'telerehab[onnx]'"
        ) from exc
    buf = source.read_bytes()
    try:
        model = tfl.Model.GetRootAs(buf, 0)
        graph = model.Subgraphs(0)
    except Exception as exc:  # flatbuffers raises plain errors on garbage
        raise ModelError(f"{source}: not a TFLite model ({exc})") from exc
    # LiteRT computes every constant (float16 dequantized, sparse densified) for us.
    it = Interpreter(
        model_path=str(source), num_threads=1, experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )  # fmt: skip
    it.allocate_tensors()
    it.set_tensor(
        it.get_input_details()[0]["index"], test_image(tuple(it.get_input_details()[0]["shape"]))
    )
    it.invoke()
    return _Converter(onnx, tfl, model, graph, it, source).run().SerializeToString()


class _Converter:
    def __init__(self, onnx, tfl, model, graph, interpreter, source: Path) -> None:
        self.onnx, self.tfl, self.model, self.graph, self.it = onnx, tfl, model, graph, interpreter
        self.source = source
        self.nodes: list = []
        self.inits: dict[str, object] = {}
        self.const: dict[int, np.ndarray] = {}
        self.nchw: set[int] = set()  # TFLite tensors held as NCHW in the ONNX graph
        self.ops = {v: k for k, v in vars(tfl.BuiltinOperator).items() if not k.startswith("_")}
        self._n = 0

    # helpers ---------------------------------------------------------------

    def name(self, t: int) -> str:
        return f"t{t}"

    def shape(self, t: int) -> list[int]:
        return [int(v) for v in self.graph.Tensors(t).ShapeAsNumpy()]

    def fresh(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def init(self, array: np.ndarray, hint: str) -> str:
        name = self.fresh(hint)
        self.inits[name] = self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name)
        return name

    def node(self, op: str, inputs: list[str], outputs: list[str], **attrs: object) -> None:
        self.nodes.append(self.onnx.helper.make_node(op, inputs, outputs, **attrs))

    def activation(self, out: str, code: int, final: str) -> None:
        act = self.tfl.ActivationFunctionType
        if code == act.NONE:
            self.node("Identity", [out], [final])
        elif code == act.RELU:
            self.node("Relu", [out], [final])
        elif code == act.RELU6:
            lo, hi = self.init(np.float32(0), "zero"), self.init(np.float32(6), "six")
            self.node("Clip", [out, lo, hi], [final])
        else:
            raise ModelError(f"{self.source}: unsupported fused activation {code}")

    def pads(self, t: int, padding: int, kernel, strides, dilations) -> list[int]:
        """Explicit ONNX pads of TFLite SAME / VALID padding (ONNX Runtime's fast
        convolutions take explicit pads; `auto_pad` sends it to a slow path)."""
        if padding != self.tfl.Padding.SAME:
            return [0, 0, 0, 0]
        before, after = [], []
        for size, k, s, d in zip(self.shape(t)[1:3], kernel, strides, dilations, strict=True):
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            before.append(total // 2)
            after.append(total - total // 2)
        return before + after

    def options(self, op, cls):
        table = op.BuiltinOptions()
        opts = cls()
        opts.Init(table.Bytes, table.Pos)
        return opts

    def nhwc(self, t: int) -> str:
        """The tensor in TFLite's own layout (transposed back if held as NCHW)."""
        if t not in self.nchw:
            return self.name(t)
        out = self.fresh(f"t{t}_nhwc")
        self.node("Transpose", [self.name(t)], [out], perm=[0, 2, 3, 1])
        return out

    def operand(self, t: int, rank4_nchw: bool) -> str:
        """A constant as an initializer (NHWC -> NCHW broadcast where needed) or a tensor."""
        if t in self.const:
            value = self.const[t].astype(np.float32)
            if rank4_nchw and value.ndim == 4:
                value = value.transpose(0, 3, 1, 2)
            elif rank4_nchw and value.ndim == 1:
                value = value.reshape(1, -1, 1, 1)
            return self.init(value, f"c{t}")
        return self.name(t)

    # the walk ----------------------------------------------------------------

    def run(self):
        g, onnx = self.graph, self.onnx
        codes = [
            max(self.model.OperatorCodes(i).BuiltinCode(),
                self.model.OperatorCodes(i).DeprecatedBuiltinCode())
            for i in range(self.model.OperatorCodesLength())
        ]  # fmt: skip
        for t in range(g.TensorsLength()):
            buffer = self.model.Buffers(g.Tensors(t).Buffer())
            if buffer is not None and buffer.DataLength() > 0:
                self.const[t] = self.it.get_tensor(t)
        (inp,) = [int(v) for v in g.InputsAsNumpy()]
        in_shape = self.shape(inp)
        self.node("Transpose", ["input_nhwc"], [self.name(inp)], perm=[0, 3, 1, 2])
        self.nchw.add(inp)
        for i in range(g.OperatorsLength()):
            op = g.Operators(i)
            kind = self.ops.get(codes[op.OpcodeIndex()], str(codes[op.OpcodeIndex()]))
            ins = [int(v) for v in op.InputsAsNumpy()]
            outs = [int(v) for v in op.OutputsAsNumpy()]
            if kind in ("DEQUANTIZE", "DENSIFY"):
                if not all(t in self.const for t in ins):
                    raise ModelError(f"{self.source}: {kind} of a non-constant tensor")
                self.const[outs[0]] = self.it.get_tensor(outs[0]).astype(np.float32)
                continue
            handler = getattr(self, f"op_{kind.lower()}", None)
            if handler is None:
                raise ModelError(f"{self.source}: TFLite operator {kind} is not supported")
            handler(op, ins, outs)
        outputs = []
        for t in (int(v) for v in g.OutputsAsNumpy()):
            name = g.Tensors(t).Name().decode()
            self.node("Identity", [self.nhwc(t)], [name])
            shape = self.shape(t)
            outputs.append(
                onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["N", *shape[1:]])
            )
        graph = onnx.helper.make_graph(
            self.nodes, self.source.stem,
            [onnx.helper.make_tensor_value_info(
                "input_nhwc", onnx.TensorProto.FLOAT, ["N", *in_shape[1:]])],
            outputs, list(self.inits.values()),
        )  # fmt: skip
        model = onnx.helper.make_model(
            graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
            producer_name="telerehab.models.onnx_export", producer_version=str(FORMAT),
        )  # fmt: skip
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model

    # operators (TFLite semantics, NCHW inside) ---------------------------------

    def _conv(self, op, ins, outs, depthwise: bool) -> None:
        tfl = self.tfl
        o = self.options(op, tfl.DepthwiseConv2DOptions if depthwise else tfl.Conv2DOptions)
        w = self.const[ins[1]]  # conv: (O, kh, kw, I); depthwise: (1, kh, kw, C*m)
        if depthwise:
            weights = w.transpose(3, 0, 1, 2)  # (C*m, 1, kh, kw)
            group = self.shape(ins[0])[3]
        else:
            weights = w.transpose(0, 3, 1, 2)
            group = 1
        args = [self.name(ins[0]), self.init(weights, "w")]
        if len(ins) > 2 and ins[2] >= 0:
            args.append(self.init(self.const[ins[2]], "b"))
        strides = [o.StrideH(), o.StrideW()]
        dilations = [o.DilationHFactor(), o.DilationWFactor()]
        kernel = list(weights.shape[2:])
        pads = self.pads(ins[0], o.Padding(), kernel, strides, dilations)
        tmp = self.fresh("conv")
        self.node(
            "Conv", args, [tmp], pads=pads, group=group, strides=strides, dilations=dilations,
            kernel_shape=kernel,
        )  # fmt: skip
        self.activation(tmp, o.FusedActivationFunction(), self.name(outs[0]))
        self.nchw.add(outs[0])

    def op_conv_2d(self, op, ins, outs) -> None:
        self._conv(op, ins, outs, depthwise=False)

    def op_depthwise_conv_2d(self, op, ins, outs) -> None:
        self._conv(op, ins, outs, depthwise=True)

    def op_add(self, op, ins, outs) -> None:
        o = self.options(op, self.tfl.AddOptions)
        four = len(self.shape(outs[0])) == 4
        tmp = self.fresh("add")
        self.node("Add", [self.operand(ins[0], four), self.operand(ins[1], four)], [tmp])
        self.activation(tmp, o.FusedActivationFunction(), self.name(outs[0]))
        if four:
            self.nchw.add(outs[0])

    def op_logistic(self, op, ins, outs) -> None:
        self.node("Sigmoid", [self.name(ins[0])], [self.name(outs[0])])
        if ins[0] in self.nchw:
            self.nchw.add(outs[0])

    def op_pad(self, op, ins, outs) -> None:
        p = self.const[ins[1]].astype(np.int64)  # (4, 2) NHWC before/after
        order = [0, 3, 1, 2]
        pads = np.concatenate([p[order, 0], p[order, 1]])
        self.node("Pad", [self.name(ins[0]), self.init(pads, "pads")], [self.name(outs[0])])
        self.nchw.add(outs[0])

    def op_max_pool_2d(self, op, ins, outs) -> None:
        o = self.options(op, self.tfl.Pool2DOptions)
        kernel, strides = [o.FilterHeight(), o.FilterWidth()], [o.StrideH(), o.StrideW()]
        pads = self.pads(ins[0], o.Padding(), kernel, strides, [1, 1])
        tmp = self.fresh("pool")
        self.node(
            "MaxPool", [self.name(ins[0])], [tmp], pads=pads, kernel_shape=kernel, strides=strides
        )
        self.activation(tmp, o.FusedActivationFunction(), self.name(outs[0]))
        self.nchw.add(outs[0])

    def op_resize_bilinear(self, op, ins, outs) -> None:
        o = self.options(op, self.tfl.ResizeBilinearOptions)
        h0, w0 = self.shape(ins[0])[1:3]
        h1, w1 = self.shape(outs[0])[1:3]
        if o.AlignCorners():
            mode = "align_corners"
        elif o.HalfPixelCenters():
            mode = "half_pixel"
        else:
            mode = "asymmetric"
        scales = self.init(np.array([1, 1, h1 / h0, w1 / w0], np.float32), "scales")
        self.node(
            "Resize", [self.name(ins[0]), "", scales], [self.name(outs[0])], mode="linear",
            coordinate_transformation_mode=mode,
        )  # fmt: skip
        self.nchw.add(outs[0])

    def op_concatenation(self, op, ins, outs) -> None:
        o = self.options(op, self.tfl.ConcatenationOptions)
        rank = len(self.shape(outs[0]))
        axis = o.Axis() % rank
        four = rank == 4 and all(t in self.nchw for t in ins)
        if four:
            axis = [0, 2, 3, 1][axis]
            args = [self.name(t) for t in ins]
        else:
            args = [self.nhwc(t) for t in ins]
        tmp = self.fresh("concat")
        self.node("Concat", args, [tmp], axis=axis)
        self.activation(tmp, o.FusedActivationFunction(), self.name(outs[0]))
        if four:
            self.nchw.add(outs[0])

    def op_reshape(self, op, ins, outs) -> None:
        shape = self.shape(outs[0])
        target = self.init(np.array([-1, *shape[1:]], np.int64), "shape")
        if len(shape) == 4:
            tmp = self.fresh("reshape")
            self.node("Reshape", [self.nhwc(ins[0]), target], [tmp])
            self.node("Transpose", [tmp], [self.name(outs[0])], perm=[0, 3, 1, 2])
            self.nchw.add(outs[0])
        else:
            self.node("Reshape", [self.nhwc(ins[0]), target], [self.name(outs[0])])

    def op_depth_to_space(self, op, ins, outs) -> None:
        o = self.options(op, self.tfl.DepthToSpaceOptions)
        self.node(
            "DepthToSpace", [self.name(ins[0])], [self.name(outs[0])], blocksize=o.BlockSize(),
            mode="DCR",
        )  # fmt: skip
        self.nchw.add(outs[0])
