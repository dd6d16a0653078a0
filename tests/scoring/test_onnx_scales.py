"""router.scoring.onnx_scales on a small graph built here: after the rewrite a row's output does not
depend on the rows batched with it, and it stays close to fp32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from router.scoring.onnx_scales import calibrate, fix_scales, per_token_inputs, quantised_inputs

ort = pytest.importorskip("onnxruntime")
quantization = pytest.importorskip("onnxruntime.quantization")

WIDTH, HIDDEN = 16, 24


def fp32_graph(path: Path) -> None:
    """x -> MatMul -> LayerNorm-like scaling -> MatMul -> Gelu -> MatMul: the three kinds of int8 input
    the encoder has (a plain input, a normalised one, a GELU's output)."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(0, 0.3, (WIDTH, HIDDEN)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.3, (HIDDEN, HIDDEN)).astype(np.float32), "w2")
    w3 = numpy_helper.from_array(rng.normal(0, 0.3, (HIDDEN, WIDTH)).astype(np.float32), "w3")
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h1"]),
        helper.make_node("Tanh", ["h1"], ["n1"]),
        helper.make_node("MatMul", ["n1", "w2"], ["h2"]),
        helper.make_node("Gelu", ["h2"], ["g"], domain="com.microsoft"),
        helper.make_node("MatMul", ["g", "w3"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "sequence", WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "sequence", WIDTH])],
        [w1, w2, w3],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    onnx.save(model, str(path))


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    s = ort.InferenceSession(model.SerializeToString(), sess_options=so, providers=["CPUExecutionProvider"])
    return np.asarray(s.run(None, {"x": x})[0])


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    tmp = tmp_path_factory.mktemp("scales")
    fp32_graph(tmp / "fp32.onnx")
    quantization.quantize_dynamic(
        str(tmp / "fp32.onnx"),
        str(tmp / "int8.onnx"),
        per_channel=True,
        weight_type=quantization.QuantType.QInt8,
    )
    return onnx.load(str(tmp / "fp32.onnx")), onnx.load(str(tmp / "int8.onnx"))


def batches(seed: int, n: int = 6) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"x": rng.normal(0, 1, (4, 5, WIDTH)).astype(np.float32)} for _ in range(n)]


def test_the_gelu_output_is_scaled_per_token_and_the_rest_fixed(graphs) -> None:  # type: ignore[no-untyped-def]
    _, int8 = graphs
    quantised = quantised_inputs(int8)
    assert len(quantised) == 3
    assert len(per_token_inputs(int8)) == 1
    ranges = calibrate(int8, batches(1))
    assert len(ranges) == 2 and all(lo <= 0.0 <= hi and hi > lo for lo, hi in ranges.values())
    fixed = fix_scales(int8, ranges)
    ops = [n.op_type for n in fixed.graph.node]
    assert "DynamicQuantizeLinear" not in ops
    # the fixed-scale MatMuls become one fused op each; the per-token one is left to ONNX Runtime
    assert ops.count("MatMulIntegerToFloat") == 2 and ops.count("MatMulInteger") == 1
    onnx.checker.check_model(fixed)


def test_a_row_scores_the_same_alone_and_in_any_batch(graphs) -> None:  # type: ignore[no-untyped-def]
    fp32, int8 = graphs
    fixed = fix_scales(int8, calibrate(int8, batches(1)))
    rng = np.random.default_rng(2)
    row = rng.normal(0, 1, (1, 5, WIDTH)).astype(np.float32)
    # batched with a row ten times larger, which sets a dynamic scale for everyone
    loud = np.concatenate([row, 10 * rng.normal(0, 1, (3, 5, WIDTH)).astype(np.float32)])
    alone_fixed, batched_fixed = run(fixed, row)[0], run(fixed, loud)[0]
    np.testing.assert_allclose(alone_fixed, batched_fixed, rtol=0, atol=1e-5)
    alone_dynamic, batched_dynamic = run(int8, row)[0], run(int8, loud)[0]
    assert np.abs(alone_dynamic - batched_dynamic).max() > 100 * np.abs(alone_fixed - batched_fixed).max()
    # and it is still the fp32 graph's answer, within int8's error
    want = run(fp32, row)[0]
    assert np.abs(alone_fixed - want).mean() < 0.05 * np.abs(want).mean()
