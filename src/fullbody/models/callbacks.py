"""Training callbacks of the student: prediction images for W&B (or a folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import lightning as L
import numpy as np
import torch
from torch import Tensor

from fullbody.draw import draw_wholebody, tile_images
from fullbody.images import IMAGENET_MEAN, IMAGENET_STD


def crops_to_bgr(images: Tensor) -> list[np.ndarray]:
    """(B,3,H,W) ImageNet-normalised RGB crops -> list of (H,W,3) BGR uint8 images."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    rgb = (images.float() * std + mean).clamp(0, 1).mul(255).round().byte()
    return [np.ascontiguousarray(im.permute(1, 2, 0).cpu().numpy()[..., ::-1]) for im in rgb]


def image_to_crop(points: Tensor, crop_to_image: Tensor) -> Tensor:
    """(B,K,2) image px -> (B,K,2) input-crop px: the inverse of ``crop_to_image`` (B,2,3)."""
    a = crop_to_image.to(torch.float64)
    full = torch.zeros(a.shape[0], 3, 3, dtype=torch.float64, device=a.device)
    full[:, :2] = a
    full[:, 2, 2] = 1
    inv = torch.linalg.inv(full)[:, :2]
    p = points.to(torch.float64)
    return (torch.einsum("bij,bkj->bki", inv[:, :, :2], p) + inv[:, None, :, 2]).float()


class PredictionImages(L.Callback):
    """Draw the first validation batch's predictions on their input crops, once an epoch.

    The tiled image goes to every logger that can log images (W&B: ``val/predictions``) and,
    with ``save_dir``, to ``save_dir/epoch{N:03d}.jpg`` — a view for runs without W&B.
    Ground truth (``target_xy`` with positive weight) is drawn beside each prediction when
    ``with_ground_truth``.
    """

    def __init__(
        self,
        num_images: int = 8,
        threshold: float = 0.3,
        every_n_epochs: int = 1,
        save_dir: str | None = None,
        with_ground_truth: bool = True,
    ) -> None:
        self.num_images = num_images
        self.threshold = threshold
        self.every_n_epochs = max(1, every_n_epochs)
        self.save_dir = Path(save_dir) if save_dir else None
        self.with_ground_truth = with_ground_truth

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if (
            batch_idx != 0
            or dataloader_idx != 0
            or trainer.sanity_checking
            or not trainer.is_global_zero
            or trainer.current_epoch % self.every_n_epochs
            or not isinstance(outputs, dict)
            or "preds" not in outputs
        ):
            return
        grid = self.render(outputs["preds"], batch, getattr(pl_module, "codec", None))
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):
                rgb = grid[..., ::-1].copy()
                logger.log_image(key="val/predictions", images=[rgb], step=trainer.global_step)
        if self.save_dir is not None:
            self.save_dir.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(self.save_dir / f"epoch{trainer.current_epoch:03d}.jpg"), grid)

    @torch.no_grad()
    def render(self, preds: dict[str, Tensor], batch: dict[str, Tensor], codec: Any) -> np.ndarray:
        """The tiled BGR image: prediction (and ground truth) on each of the first crops."""
        n = min(self.num_images, len(preds["keypoints"]))
        kpts = preds["keypoints"][:n].detach().float()
        crop_xy = image_to_crop(kpts[..., :2], batch["crop_to_image"][:n])
        pred = torch.cat([crop_xy, kpts[..., 2:]], -1).cpu().numpy()
        crops = crops_to_bgr(batch["image"][:n])
        tiles = []
        for i, crop in enumerate(crops):
            tiles.append(draw_wholebody(crop, pred[i], self.threshold, radius=1, thickness=1))
            if self.with_ground_truth and codec is not None and "target_xy" in batch:
                gt_xy = codec.heatmap_to_input(batch["target_xy"][i].float()).cpu().numpy()
                vis = (batch["target_weight"][i] > 0).float().cpu().numpy()[:, None]
                gt = np.concatenate([gt_xy, vis], -1)
                tiles.append(draw_wholebody(crop, gt, 0.5, radius=1, thickness=1))
        return tile_images(tiles, columns=8 if self.with_ground_truth else 4)
