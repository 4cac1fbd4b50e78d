"""ONNX export of the pose network, and the check that onnxruntime agrees with PyTorch.

The exported graph is the network alone: normalised crops ``image`` (B, 3, H, W) float32 ->
``heatmaps`` (B, K, H/4, W/4), or for a SimCC head the two outputs ``simcc_x`` (B, K, W*r) and
``simcc_y`` (B, K, H*r) (RTMPose's published layout), with a dynamic batch axis. Cropping, the
flip test, decoding and NMS stay in :class:`fullbody.inference.predictor.PosePredictor`, which
reads the model's :class:`~fullbody.codecs.spec.TopDownSpec` from the file's metadata
(``topdown_spec``: crop size and padding, codec, decoding), as the ONNX teacher does.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from fullbody.codecs.spec import TopDownSpec
from fullbody.errors import OutputError, OutputExistsError
from fullbody.images import ImageNormalizer
from fullbody.jsonio import write_atomic
from fullbody.utils.onnx_session import onnx_session

INPUT_NAME = "image"
HEATMAP_OUTPUTS = ("heatmaps",)
SIMCC_OUTPUTS = ("simcc_x", "simcc_y")


def _meta_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | tuple):
        return ",".join(str(x) for x in v)
    return str(v)


def export_onnx(
    net: nn.Module,
    path: str | os.PathLike,
    spec: TopDownSpec,
    metadata: Mapping[str, Any] | None = None,
    opset: int = 17,
    overwrite: bool = False,
) -> Path:
    """Write ``net`` (in eval mode, on the CPU) as ONNX with a dynamic batch axis, taking
    ``spec.input_size`` crops; ``spec`` is stored whole in the metadata (``topdown_spec``).

    ``metadata`` adds entries to the model's ``metadata_props`` (lists as "a,b", bools as
    "true"/"false"). The file is written next to its final name and moved into place
    (:func:`fullbody.jsonio.write_atomic`): a failure (a full disk: :class:`OutputError` naming
    the file) leaves the previous file or none, and no temporary file.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: exists (pass overwrite=true to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    net = net.eval().to("cpu", memory_format=torch.contiguous_format)
    h, w = spec.input_size
    dummy = torch.zeros(2, 3, h, w)
    with torch.inference_mode():
        simcc = isinstance(net(dummy), tuple)
    outputs = SIMCC_OUTPUTS if simcc else HEATMAP_OUTPUTS
    graph = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated in favour of the dynamo one, which
        # needs onnxscript; it is still the one that needs no extra package.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (dummy,),
            graph,
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=list(outputs),
            dynamic_axes={name: {0: "batch"} for name in (INPUT_NAME, *outputs)},
            opset_version=opset,
        )
    model = onnx.load_from_string(graph.getvalue())
    for key, value in {**(metadata or {}), **spec.to_metadata()}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = str(key), _meta_value(value)
    model.producer_name = "fullbody"
    onnx.checker.check_model(model)
    try:
        return write_atomic(model.SerializeToString(), path)
    except OSError as e:
        raise OutputError(f"{path}: cannot write the ONNX model ({e.strerror or e})") from None


def checkpoint_metadata(hparams: Mapping[str, Any], checkpoint: str) -> dict[str, Any]:
    """The ONNX metadata of a ``train.py`` checkpoint besides its spec (which
    :func:`export_onnx` writes): the architecture and the checkpoint's file name."""
    return {
        "num_keypoints": hparams["num_keypoints"],
        "backbone": hparams["backbone"],
        "head": hparams["head"],
        "checkpoint": checkpoint,
    }


def export_checked(
    net: nn.Module,
    path: str | os.PathLike,
    spec: TopDownSpec,
    metadata: Mapping[str, Any],
    crops: np.ndarray,
    *,
    tolerance: float,
    opset: int = 17,
    batch_sizes: Sequence[int] = (1, 8),
) -> tuple[dict[str, Any], bool]:
    """Export ``net`` (taking ``spec``'s crops, ``spec`` in its metadata) and keep the file at
    ``path`` only if onnxruntime agrees with PyTorch on ``crops`` within ``tolerance`` (max
    absolute difference); returns the parity report (:func:`onnx_parity`) and whether the file
    was kept.

    The file is written and checked under a temporary name beside ``path``, so a model that
    fails the check never sits at ``path`` (what was there stays).
    """
    final = Path(path)
    candidate = final.with_name(f".{final.name}.unchecked")
    try:
        export_onnx(net, candidate, spec, metadata, opset, overwrite=True)
        report = onnx_parity(net, candidate, crops, batch_sizes)
        ok = report["max_abs_diff"] <= tolerance
        if ok:
            candidate.replace(final)
    finally:
        candidate.unlink(missing_ok=True)
    return report, ok


def random_crops(n: int, input_size: Sequence[int], seed: int = 0) -> np.ndarray:
    """``n`` normalised crops of random uint8 RGB pixels, (n, 3, H, W) float32."""
    rng = np.random.default_rng(seed)
    h, w = int(input_size[0]), int(input_size[1])
    norm = ImageNormalizer()
    return np.stack([norm(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for _ in range(n)])


def onnx_parity(
    net: nn.Module,
    path: str | os.PathLike,
    crops: np.ndarray,
    batch_sizes: Sequence[int] = (1, 8),
) -> dict[str, Any]:
    """Max and mean absolute output difference (heatmaps, or both SimCC outputs),
    onnxruntime (CPU) vs PyTorch (CPU, fp32).

    The crops run through both in each of ``batch_sizes`` (which checks the dynamic batch);
    also returns the largest output magnitude for scale.
    """
    session = onnx_session(Path(path), ["CPUExecutionProvider"])
    net = net.eval().to("cpu", dtype=torch.float32, memory_format=torch.contiguous_format)
    with torch.inference_mode():
        out = net(torch.from_numpy(crops))
    refs = [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]
    worst, total, count = 0.0, 0.0, 0
    for b in batch_sizes:
        for i in range(0, len(crops), b):
            got = session.run(None, {INPUT_NAME: crops[i : i + b]})
            if len(got) != len(refs):
                raise ValueError(f"{path}: {len(got)} outputs, the network has {len(refs)}")
            for g, ref in zip(got, refs):
                d = np.abs(g - ref[i : i + b])
                worst = max(worst, float(d.max()))
                total += float(d.sum())
                count += d.size
    return {
        "max_abs_diff": worst,
        "mean_abs_diff": total / max(count, 1),
        "max_output": max(float(np.abs(r).max()) for r in refs),
        "crops": len(crops),
        "batch_sizes": list(batch_sizes),
    }
