"""ONNX Runtime's ``Conv`` on the CPU (its MLAS kernels): a one-node model built with the ``onnx`` package.

The weights are an initializer of the model, as a deployed model holds them (ONNX Runtime may prepack
them when the session is made); the input is fed per call through ``InferenceSession.run``.
Forward only: ONNX Runtime's inference sessions have no backward pass.
"""

from __future__ import annotations

import numpy as np

from ..grid import problem
from ._spec import Peer, planned, threads

#: The ONNX opset of the model: Conv's semantics have not changed since opset 11.
OPSET = 17


def _layer(point, arrays, backward):
    import onnx  # optional dependency: a peer only where installed
    import onnx.helper  # optional dependency, as above
    import onnx.numpy_helper  # optional dependency, as above
    import onnxruntime  # optional dependency, as above

    x, w = arrays["x"], arrays["w"]
    core = problem(point)
    element = onnx.helper.np_dtype_to_tensor_dtype(x.dtype)
    node = onnx.helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[w.shape[2]], strides=[core.stride],
                                 pads=[core.pad_left, core.pad_right], dilations=[core.dilation], group=core.groups)
    graph = onnx.helper.make_graph(
        [node], "conv1d", [onnx.helper.make_tensor_value_info("x", element, list(x.shape))],
        [onnx.helper.make_tensor_value_info("y", element, None)], [onnx.numpy_helper.from_array(w, "w")])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = {"x": np.ascontiguousarray(x)}
    return planned(lambda: session.run(None, feed)[0]), None


PEER = Peer(
    name="onnxruntime", library="ONNX Runtime", needs="onnxruntime", licence="MIT (ONNX Runtime), Apache-2.0 (onnx)",
    computes="cross-correlation layer (ONNX Conv, MLAS)", threads="ours",
    call="`onnxruntime.InferenceSession(model).run(None, {{\"x\": x}})` of a one-node ONNX model (opset "
         f"{OPSET}: `Conv` with the point's `pads`, `strides`, `dilations` and `group`, the weights an "
         "initializer) on the CPUExecutionProvider, `intra_op_num_threads={threads}`, `inter_op_num_threads=1`; "
         "the session made and called once before the timing",
    layer=_layer, dtypes=("float32",), import_s=0.3, build_s=0.05)
