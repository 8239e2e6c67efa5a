"""Tiny models for the image tasks, built in the tests (no hub): the files production loads.

- ``build_tiny_esrgan``: an RRDBNet state dict in Real-ESRGAN's official layout
  (``{"params_ema": {conv_first..., body.N.rdbK.convM..., conv_up1/2, conv_hr, conv_last}}``)
  saved with ``torch.save``, built from the architecture in ``handlers/images/rrdbnet.py``'s
  own key names, seeded so it is the same every time.
- ``build_tiny_ben2_onnx``: an ONNX graph with BEN2_Base.onnx's interface (one float input
  ``1x3x1024x1024``, one sigmoid mask ``1x1x1024x1024``) and random conv weights, saved with
  ``onnx.save``. It is not BEN2's Swin network (that needs BEN2's code); it exercises the
  real loader, ONNX Runtime session and BEN2's pre- and post-processing.
- ``image_bytes``: a test picture, optionally with alpha or an EXIF orientation.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any


def build_tiny_esrgan(path: str | Path, *, unshuffle: int = 1, blocks: int = 1, seed: int = 0) -> Path:
    import torch

    from handlers.images.rrdbnet import RRDBConfig, RRDBNet

    path = Path(path)
    if not path.exists():
        torch.manual_seed(seed)
        model = RRDBNet(RRDBConfig(features=8, growth=4, blocks=blocks, unshuffle=unshuffle))
        torch.save({"params_ema": model.state_dict()}, path)
    return path


def build_tiny_ben2_onnx(path: str | Path, *, side: int = 1024, seed: int = 0) -> Path:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    path = Path(path)
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    hidden = 4
    weights = [
        numpy_helper.from_array(rng.normal(0, 0.5, (hidden, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.5, (1, hidden, 3, 3)).astype(np.float32), "w2"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "w1"], ["h"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Conv", ["r", "w2"], ["logits"], pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["logits"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-ben2",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, side, side])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, side, side])],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every ONNX Runtime this worker pins
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def picture(width: int, height: int, *, alpha: bool = False) -> Any:
    """A deterministic picture with structure (gradients and a disc), RGB or RGBA."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width]
    disc = ((x - width / 2) ** 2 + (y - height / 2) ** 2) < (min(width, height) / 3) ** 2
    rgb = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), disc * 200 + 30], -1)
    image = Image.fromarray(rgb.astype(np.uint8), "RGB")
    if alpha:
        image.putalpha(Image.fromarray(np.where(x < width // 2, 255, 60).astype(np.uint8), "L"))
    return image


def image_bytes(width: int, height: int, fmt: str = "PNG", *, alpha: bool = False, orientation: int = 0) -> bytes:
    image = picture(width, height, alpha=alpha)
    buffer = io.BytesIO()
    if orientation:
        exif = image.getexif()
        exif[0x0112] = orientation  # 6: the camera was turned; viewers rotate 90° clockwise
        image.save(buffer, format=fmt, exif=exif)
    else:
        image.save(buffer, format=fmt)
    return buffer.getvalue()
