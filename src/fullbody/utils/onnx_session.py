"""onnxruntime sessions, made one way for every ONNX file the project runs (person detector,
exported pose network, ONNX teachers, the export parity check)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fullbody.errors import UserError


class OnnxModelError(UserError, ValueError):
    """A file given as an ONNX model is not one onnxruntime loads, or its inputs and outputs are
    not what its use needs; the message names the file."""


def onnx_session(path: Path, providers: Sequence[str] | None = None, threads: int = 0):
    """An onnxruntime session of ``path`` (``providers`` default: :func:`default_providers`;
    ``threads`` 0: onnxruntime's choice), or an :class:`OnnxModelError` naming the file."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(
            str(path), opts, providers=list(providers or default_providers())
        )
    except Exception as e:  # onnxruntime raises its own exception types
        why = " ".join(str(e).split())[:300]
        raise OnnxModelError(f"{path}: not a loadable ONNX model ({why})") from None


def default_providers() -> list[str]:
    """CUDA then CPU when onnxruntime has CUDA, else CPU."""
    import onnxruntime as ort

    have = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in have]
