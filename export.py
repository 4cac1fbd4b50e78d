"""Export a checkpoint to ONNX and check parity: ``python export.py ckpt_path=CKPT``.

Writes the ONNX file (``out_file``, default ``<run folder>/model.onnx``) and
``export_report.json`` (max/mean absolute output difference onnxruntime vs PyTorch on random
crops). The model is written under a temporary name and moved to ``out_file`` only when the
difference is within ``check.tolerance``; otherwise it is removed (the report stays) and the
exit status is 1. See docs/inference.md.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: DictConfig) -> None:
    """Export, check and report (see the module docs)."""
    from fullbody.jobs import export
    from fullbody.utils.cli import user_errors

    with user_errors(cfg):
        export.run(cfg)


if __name__ == "__main__":
    main()
