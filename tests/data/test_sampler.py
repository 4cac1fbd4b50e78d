"""The image-grouped training order: groups, epochs, plain shuffling, DDP ranks."""

from __future__ import annotations

import numpy as np

from fullbody.data.sampler import ImageGroupedSampler


def indices(sampler: ImageGroupedSampler) -> list[int]:
    return [i for i, _ in sampler]


def test_grouped_sampler_orders():
    image_ids = np.repeat(np.arange(20), np.arange(1, 21) % 7 + 1)  # 1..7 people per image
    n = len(image_ids)
    s = ImageGroupedSampler(image_ids, group_size=3, seed=1)
    first = indices(s)
    assert sorted(first) == list(range(n))
    # each image's people come in at most ceil(n / 3) runs, so most people have company
    for img in range(20):
        pos = np.sort([j for j, i in enumerate(first) if image_ids[i] == img])
        runs = 1 + int((np.diff(pos) > 1).sum())
        assert runs <= -(-len(pos) // 3)
    switches = sum(image_ids[a] != image_ids[b] for a, b in zip(first, first[1:]))
    assert switches + 1 < n / 2
    assert list(s) == [(i, 0) for i in first]  # same epoch, same order; keys carry the epoch
    s.set_epoch(1)
    assert indices(s) != first and {e for _, e in s} == {1}
    plain = indices(ImageGroupedSampler(image_ids, group_size=1, seed=1))
    assert sorted(plain) == list(range(n)) and plain != list(range(n))
    fixed = ImageGroupedSampler(image_ids, shuffle=False)
    assert indices(fixed) == list(range(n))


def test_grouped_sampler_splits_ranks():
    image_ids = np.repeat(np.arange(10), 3)[:-1]  # 29 people
    parts = [
        indices(ImageGroupedSampler(image_ids, 4, num_replicas=3, rank=r, seed=2)) for r in range(3)
    ]
    assert [len(p) for p in parts] == [10, 10, 10]
    assert set().union(*map(set, parts)) == set(range(29))  # padded by one repeat
    dropped = [
        ImageGroupedSampler(image_ids, 4, num_replicas=3, rank=r, drop_last=True) for r in range(3)
    ]
    assert [len(list(d)) for d in dropped] == [9, 9, 9]
