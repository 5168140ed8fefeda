"""Static int8 quantization (QDQ) of an exported model, and its speed against fp32."""

from __future__ import annotations

import contextlib
import logging
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from snca_cli.contract.metadata import INPUT_NAME
from snca_cli.runtime.onnx_graph import fold_static_dims

#: Convolutions at the start of the network kept in fp32 (:func:`float_nodes`).
FP32_LEADING_CONVS = 3
#: Images per calibration batch.
CALIBRATION_BATCH = 16
#: onnxruntime's default logging level (warnings), restored after quantization.
ORT_DEFAULT_SEVERITY = 2
#: Timed runs of the speed measurement (after one warm-up run); the median counts.
SPEED_RUNS = 5


class BatchReader(CalibrationDataReader):
    """Feeds calibration batches (N x bands x H x W float32 in [0, 1]) to the calibrator."""

    def __init__(self, images: np.ndarray) -> None:
        self._batches = iter(
            [
                {INPUT_NAME: np.ascontiguousarray(images[i : i + CALIBRATION_BATCH])}
                for i in range(0, len(images), CALIBRATION_BATCH)
            ]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def float_nodes(path: Path) -> list[str]:
    """Names of the nodes left in float:

    * those that produce the graph's outputs (the L2 division and the softmax), so the
      embedding stays unit-length and the probabilities are not 8-bit steps;
    * the fully connected heads (``Gemm``: the embedding layer and the class prototypes), whose
      cost is negligible;
    * the first :data:`FP32_LEADING_CONVS` convolutions, at the network's highest resolution.
      Measured on the shipped model (``docs/benchmarks.md``): the top-10 neighbours shared with
      fp32 rise from 8.99 to 9.11 of 10 on AID, for about 5 % of the multiply-adds in fp32.
    """
    model = onnx.load(str(path), load_external_data=False)
    outputs = {o.name for o in model.graph.output}
    convolutions = [node.name for node in model.graph.node if node.op_type == "Conv"]
    return [
        node.name
        for node in model.graph.node
        if outputs.intersection(node.output) or node.op_type == "Gemm"
    ] + convolutions[:FP32_LEADING_CONVS]


@contextlib.contextmanager
def quiet_quantizer() -> Iterator[None]:
    """Hide the quantizer's advice (Python logging) and its calibration sessions' warnings about
    unused constants (onnxruntime logging) while it runs; errors still show."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    ort.set_default_logger_severity(3)
    try:
        yield
    finally:
        root.setLevel(level)
        ort.set_default_logger_severity(ORT_DEFAULT_SEVERITY)


def quantize_int8(fp32_path: Path, int8_path: Path, calibration: np.ndarray) -> None:
    """Write the int8 QDQ model of ``fp32_path`` (per-channel int8 weights, uint8 activations
    calibrated by min/max over ``calibration`` images) to ``int8_path``; metadata is copied.

    The model is first pre-processed as onnxruntime recommends (shape inference and graph
    optimisation); some nodes stay in float (:func:`float_nodes`).
    """
    with tempfile.TemporaryDirectory(prefix="snca-quantize-") as work, quiet_quantizer():
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))
        quantize_static(
            str(prepared),
            str(int8_path),
            BatchReader(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=float_nodes(prepared),
            calibrate_method=CalibrationMethod.MinMax,
        )
    source = onnx.load(str(fp32_path), load_external_data=False)
    quantized = onnx.load(str(int8_path))
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(source.metadata_props)
    fold_static_dims(quantized)  # the quantizer's shape inference leaves some to fold
    onnx.checker.check_model(quantized)
    onnx.save(quantized, str(int8_path))


def images_per_second(path: Path, images: np.ndarray) -> float:
    """Throughput of the model at ``path`` on the CPU over one batch of ``images``: the median of
    :data:`SPEED_RUNS` timed runs after a warm-up."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {INPUT_NAME: np.ascontiguousarray(images, dtype=np.float32)}
    session.run(None, feed)
    durations = []
    for _ in range(SPEED_RUNS):
        start = time.perf_counter()
        session.run(None, feed)
        durations.append(time.perf_counter() - start)
    return len(images) / statistics.median(durations)
