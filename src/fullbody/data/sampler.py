"""Training order: people of one image in small groups, shuffled per epoch, split over DDP ranks.

The sampler yields ``(index, epoch)`` keys so that an item's augmentation is drawn from
``(seed, epoch, index)`` alone (exact resume); :class:`~fullbody.data.dataset.TopDownDataset`
accepts such keys.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import DistributedSampler


class ImageGroupedSampler(DistributedSampler):
    """Random training order in which people of one image come in small groups.

    Every epoch, each image's items are shuffled and cut into near-equal chunks of at most
    ``group_size``; the chunks are shuffled and concatenated. Consecutive items of one image
    then share one JPEG decode (:meth:`~fullbody.data.dataset.TopDownDataset.cached_image`), which is most of a
    sample's cost, while a batch still mixes many images. ``group_size=1`` is a plain random
    permutation. Under DDP each rank takes a contiguous slice of the (padded) order; being a
    ``DistributedSampler``, Lightning uses it as it is and calls :meth:`set_epoch`.
    """

    def __init__(
        self,
        image_ids: np.ndarray,
        group_size: int = 4,
        *,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
    ) -> None:
        if group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {group_size}")
        self.image_ids = np.asarray(image_ids, dtype=np.int64)
        self.group_size = int(group_size)
        super().__init__(
            self.image_ids,  # only its length is used
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )

    def order(self) -> np.ndarray:
        """The whole epoch's order over all ranks (before padding)."""
        n = len(self.image_ids)
        if not self.shuffle:
            return np.arange(n)
        rng = np.random.default_rng((self.seed, self.epoch))
        if self.group_size == 1:
            return rng.permutation(n)
        perm = rng.permutation(n)  # shuffles people inside each image too
        ids = self.image_ids[perm]
        by_image = np.argsort(ids, kind="stable")
        bounds = np.flatnonzero(np.diff(ids[by_image])) + 1
        chunks: list[np.ndarray] = []
        for members in np.split(perm[by_image], bounds):
            k = -(-len(members) // self.group_size)
            chunks.extend(np.array_split(members, k))
        return np.concatenate([chunks[j] for j in rng.permutation(len(chunks))])

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """``(index, epoch)`` keys of this rank's share (see :class:`~fullbody.data.dataset.TopDownDataset`)."""
        order = self.order()
        if self.drop_last:
            order = order[: self.total_size]
        else:
            pad = self.total_size - len(order)
            order = np.concatenate([order, np.resize(order, pad)]) if pad > 0 else order
        start = self.rank * self.num_samples
        return ((i, self.epoch) for i in order[start : start + self.num_samples].tolist())
