"""Activation scales that depend on a text alone, for the int8 encoder graph (``scripts/export_onnx.py``).

``quantize_dynamic`` quantises every int8 MatMul's input with one scale per tensor per call
(``DynamicQuantizeLinear``): the longest or most unusual text of a batch sets the resolution of every
other, so a turn's score depended on the traffic it was batched with (models/MODEL_CARD.md, Known limits).
``fix_scales`` rewrites each of those inputs so that its scale depends on nothing but the text:

- the attention's input (``QAttention`` takes one scalar scale) and the inputs of the MatMuls that read a
  LayerNorm or the attention's output get one fixed scale each: the range the tensor takes on calibration
  texts (``calibrate``). A few outlier dimensions present in every token set that range, so it barely
  moves from batch to batch, and a text beyond it saturates as any int8 value does;
- the feed-forward output MatMuls' inputs (a GELU's output, whose range moves most with the text) get one
  scale per token: its own largest |x| over 127, around zero point 128.

The fixed-scale MatMuls are written as ``MatMulIntegerToFloat`` (ONNX Runtime fuses the per-token ones
itself), so the graph runs about as fast as the dynamic one. Measured on 2026-12-06 in the export's
``--scales`` comparison (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np
import onnx
from onnx import NodeProto, TensorProto, helper, numpy_helper

GELU_OPS = ("BiasGelu", "Gelu", "FastGelu")
_EPS = 1e-8


def quantised_inputs(model: onnx.ModelProto) -> list[NodeProto]:
    """The graph's ``DynamicQuantizeLinear`` nodes, in graph order."""
    return [n for n in model.graph.node if n.op_type == "DynamicQuantizeLinear"]


def per_token_inputs(model: onnx.ModelProto) -> set[str]:
    """Names of the ``DynamicQuantizeLinear`` nodes that quantise a GELU's output."""
    producer = {o: n.op_type for n in model.graph.node for o in n.output}
    return {n.name for n in quantised_inputs(model) if producer.get(n.input[0]) in GELU_OPS}


def calibrate(
    model: onnx.ModelProto, feeds: Iterable[Mapping[str, np.ndarray]], threads: int = 2
) -> dict[str, tuple[float, float]]:
    """(min, max) over ``feeds`` of every input that gets a fixed scale, each range widened to hold 0."""
    import onnxruntime as ort

    token = per_token_inputs(model)
    names = [n.input[0] for n in quantised_inputs(model) if n.name not in token]
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(helper.make_tensor_value_info(x, TensorProto.FLOAT, None) for x in names)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    session = ort.InferenceSession(
        probe.SerializeToString(), sess_options=so, providers=["CPUExecutionProvider"]
    )
    low = dict.fromkeys(names, 0.0)
    high = dict.fromkeys(names, 0.0)
    for feed in feeds:
        for name, out in zip(names, session.run(names, dict(feed)), strict=True):
            low[name] = min(low[name], float(np.min(out)))
            high[name] = max(high[name], float(np.max(out)))
    return {x: (low[x], high[x]) for x in names}


def fix_scales(model: onnx.ModelProto, ranges: Mapping[str, tuple[float, float]]) -> onnx.ModelProto:
    """``model`` with every ``DynamicQuantizeLinear`` replaced: a fixed scale from ``ranges`` (keyed by the
    quantised tensor's name), or one per token for a GELU's output."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    token = per_token_inputs(out)
    consts: list[TensorProto] = []

    def const(name: str, value: np.ndarray) -> str:
        consts.append(numpy_helper.from_array(value, name))
        return name

    c127 = const("fixed_scales_127", np.array(127.0, np.float32))
    eps = const("fixed_scales_eps", np.array(_EPS, np.float32))
    flat = const("fixed_scales_flat", np.array([-1], np.int64))
    widths = _input_widths(out)
    nodes: list[NodeProto] = []
    for n in g.node:
        if n.op_type != "DynamicQuantizeLinear":
            nodes.append(n)
        elif n.name in token:
            nodes += _per_token(n, widths[n.input[0]], c127, eps, flat, const)
        else:
            low, high = ranges[n.input[0]]
            scale = max(high - low, _EPS) / 255.0
            zero = int(np.clip(round(-low / scale), 0, 255))
            const(n.output[1], np.array(scale, np.float32))
            const(n.output[2], np.array(zero, np.uint8))
            nodes.append(
                helper.make_node(
                    "QuantizeLinear",
                    [n.input[0], n.output[1], n.output[2]],
                    [n.output[0]],
                    name=n.output[0] + "_fixed",
                )
            )
    del g.node[:]
    g.node.extend(_fuse_fixed_matmuls(nodes, {t.name for t in consts}))
    g.initializer.extend(consts)
    return out


def _input_widths(model: onnx.ModelProto) -> dict[str, int]:
    """Quantised tensor -> its last dimension, read from the MatMulInteger weight that consumes it."""
    dims = {i.name: list(i.dims) for i in model.graph.initializer}
    quantised = {n.output[0]: n.input[0] for n in quantised_inputs(model)}
    return {
        quantised[n.input[0]]: int(dims[n.input[1]][0])
        for n in model.graph.node
        if n.op_type == "MatMulInteger" and n.input[0] in quantised
    }


def _per_token(
    n: NodeProto, width: int, c127: str, eps: str, flat: str, const: Callable[[str, np.ndarray], str]
) -> list[NodeProto]:
    """x -> (uint8 x, scale [..., 1], zero point 128): each token scaled by its own largest |x|."""
    x, p = n.input[0], n.output[0] + "_token"
    rows = const(p + "_rows", np.array([-1, width], np.int64))
    const(n.output[2], np.array(128, np.uint8))
    zero = numpy_helper.from_array(np.array([128], np.uint8))
    return [
        helper.make_node("Abs", [x], [p + "_abs"]),
        helper.make_node("ReduceMax", [p + "_abs"], [p + "_max"], axes=[-1], keepdims=1),
        helper.make_node("Max", [p + "_max", eps], [p + "_maxe"]),
        helper.make_node("Div", [p + "_maxe", c127], [n.output[1]]),
        # QuantizeLinear per axis: one scale per row of the (tokens, width) view
        helper.make_node("Reshape", [n.output[1], flat], [p + "_scale_rows"]),
        helper.make_node("Reshape", [x, rows], [p + "_x_rows"]),
        helper.make_node("Shape", [p + "_scale_rows"], [p + "_n"]),
        helper.make_node("ConstantOfShape", [p + "_n"], [p + "_zero_rows"], value=zero),
        helper.make_node(
            "QuantizeLinear", [p + "_x_rows", p + "_scale_rows", p + "_zero_rows"], [p + "_q_rows"], axis=0
        ),
        helper.make_node("Shape", [x], [p + "_shape"]),
        helper.make_node("Reshape", [p + "_q_rows", p + "_shape"], [n.output[0]]),
    ]


def _fuse_fixed_matmuls(nodes: list[NodeProto], fixed: set[str]) -> list[NodeProto]:
    """MatMulInteger -> Cast -> Mul(scales), the scales a fixed input scale times the weights', as one
    MatMulIntegerToFloat: ONNX Runtime fuses that pattern only after a DynamicQuantizeLinear."""
    fixed_q = {n.output[0]: n for n in nodes if n.op_type == "QuantizeLinear" and n.input[1] in fixed}
    users: dict[str, list[NodeProto]] = {}
    made_by = {o: n for n in nodes for o in n.output}
    for n in nodes:
        for i in n.input:
            users.setdefault(i, []).append(n)
    gone: set[int] = set()
    fused: dict[int, NodeProto] = {}
    for n in nodes:
        if n.op_type != "MatMulInteger" or n.input[0] not in fixed_q:
            continue
        after = users.get(n.output[0], [])
        if len(after) != 1 or after[0].op_type != "Cast" or len(users.get(after[0].output[0], [])) != 1:
            continue
        cast, mul = after[0], users[after[0].output[0]][0]
        scales = next((made_by[i] for i in mul.input if i != cast.output[0] and i in made_by), None)
        if mul.op_type != "Mul" or scales is None or scales.op_type != "Mul":
            continue
        a_scale = fixed_q[n.input[0]].input[1]
        (b_scale,) = [i for i in scales.input if i != a_scale]
        fused[id(n)] = helper.make_node(
            "MatMulIntegerToFloat",
            [n.input[0], n.input[1], a_scale, b_scale, n.input[2], n.input[3]],
            [mul.output[0]],
            name=mul.output[0] + "_to_float",
            domain="com.microsoft",
        )
        gone |= {id(cast), id(mul), id(scales)}
    return [fused.get(id(n), n) for n in nodes if id(n) not in gone]
