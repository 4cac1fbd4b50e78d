"""fullbody: multi-person whole-body pose estimation (133 COCO-WholeBody keypoints) by distillation.

``from fullbody import Wholebody`` is the one-call API (:mod:`fullbody.inference.wholebody`); it
is imported on first use, so ``import fullbody`` itself loads neither torch nor onnxruntime.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Wholebody", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Wholebody":
        from fullbody.inference.wholebody import Wholebody

        return Wholebody
    raise AttributeError(f"module 'fullbody' has no attribute {name!r}")
