import pickle

import numpy as np
import pytest
import torch

from fullbody.codecs import (
    HeatmapCodec,
    crop_to_image_points,
    encode_reference,
    flip_heatmaps,
    is_channels_last,
)
from fullbody.keypoints import FLIP_INDEX

CODEC = HeatmapCodec((256, 192), (64, 48), sigma=2.0, dark=False)


def _points(b: int, k: int = 133, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(b, k, 2, generator=g) * torch.tensor([47.0, 63.0])
    return xy


def test_batched_encode_matches_cpu_reference():
    xy = _points(3)
    xy[0, 5] = torch.tensor([-10.0, 5.0])  # far outside: weight 0
    xy[1, 7] = torch.tensor([49.0, 30.0])  # just outside, Gaussian still inside: kept
    xy[2, 9] = torch.tensor([float("nan"), 1.0])
    w = torch.rand(3, 133)
    w[0, 1] = 0
    hm, wt = CODEC.encode(xy, w)
    assert hm.shape == (3, 133, 64, 48) and hm.dtype == torch.float32
    for b in range(3):
        ref_hm, ref_w = encode_reference(xy[b].numpy(), w[b].numpy(), (64, 48), 2.0)
        np.testing.assert_allclose(hm[b].numpy(), ref_hm, atol=1e-6)
        np.testing.assert_allclose(wt[b].numpy(), ref_w, atol=1e-6)
    assert wt[0, 5] == 0 and wt[0, 1] == 0 and wt[1, 7] > 0 and wt[2, 9] == 0
    assert torch.isfinite(hm).all()


@pytest.mark.parametrize("dark", [False, True])
def test_encode_decode_round_trip(dark):
    # keep 1.5 sigma from the border, where the blur's zero padding is negligible
    xy = _points(4) * torch.tensor([41.0 / 47, 57.0 / 63]) + 3.0
    hm, _ = CODEC.encode(xy, torch.ones(4, 133))
    out, score = CODEC.decode(hm, dark=dark)
    err = (out - xy).abs().max().item()
    assert err < (0.1 if dark else 0.26)
    assert torch.allclose(score, torch.ones_like(score), atol=0.12)
    if dark:
        assert (out - xy).norm(dim=-1).mean() < 0.01


def test_dark_ignores_a_flat_or_degenerate_map():
    hm = torch.zeros(1, 2, 64, 48)
    hm[0, 1, 10, 10] = 1.0  # a single spike
    xy, score = CODEC.decode(hm, dark=True)
    assert torch.isfinite(xy).all() and score[0, 0] == 0
    assert (xy[0, 1] - torch.tensor([10.0, 10.0])).abs().max() <= 1.0


def test_frames_are_centre_aligned_and_invertible():
    pts = torch.tensor([[[0.0, 0.0], [191.0, 255.0], [95.5, 127.5]]])
    hm = CODEC.input_to_heatmap(pts)
    assert torch.allclose(hm[0, 0], torch.tensor([-0.375, -0.375]))
    assert torch.allclose(hm[0, 1], torch.tensor([47.375, 63.375]))
    assert torch.allclose(hm[0, 2], torch.tensor([23.5, 31.5]))  # centre maps to centre
    assert torch.allclose(CODEC.heatmap_to_input(hm), pts)
    np.testing.assert_allclose(
        CODEC.heatmap_to_input(CODEC.input_to_heatmap(np.array([3.0, 4.0]))), [3, 4]
    )


def test_mirroring_a_crop_mirrors_its_heatmaps_exactly():
    xy_in = torch.rand(2, 133, 2) * torch.tensor([191.0, 255.0])
    mirrored = xy_in.clone()
    mirrored[..., 0] = 191.0 - mirrored[..., 0]  # x' = W - 1 - x in the input crop
    mirrored = mirrored[
        :, torch.as_tensor(FLIP_INDEX.copy())
    ]  # a mirrored person's left is the old right
    ones = torch.ones(2, 133)
    hm, _ = CODEC.encode(CODEC.input_to_heatmap(xy_in), ones)
    hm_m, _ = CODEC.encode(CODEC.input_to_heatmap(mirrored), ones)
    assert torch.allclose(flip_heatmaps(hm_m), hm, atol=1e-6)
    assert torch.equal(flip_heatmaps(flip_heatmaps(hm)), hm)


def test_crop_to_image_points():
    a = torch.tensor([[[2.0, 0.0, 10.0], [0.0, 2.0, -5.0]]], dtype=torch.float64)
    xy = torch.tensor([[[1.0, 1.0], [0.0, 3.0]]])
    out = crop_to_image_points(xy, a)
    assert out.dtype == xy.dtype
    assert torch.allclose(out, torch.tensor([[[12.0, -3.0], [10.0, 1.0]]]))


def test_bad_blur_kernel():
    with pytest.raises(ValueError, match="odd"):
        HeatmapCodec((256, 192), (64, 48), 2.0, dark=False, blur_kernel=10)


def test_encode_writes_no_subnormals_and_drops_only_negligible_tails():
    """Far Gaussian tails are 0, not subnormal floats (slow CPU arithmetic downstream); what is
    dropped is below 2**-63 per factor, so the maps match exact Gaussians to ~1e-19."""
    codec = HeatmapCodec((256, 192), (64, 48), 2.0, dark=False)
    xy = torch.tensor([[[1.0, 2.0], [40.0, 60.0], [23.5, 31.2]]])
    heatmaps, _ = codec.encode(xy, torch.ones(1, 3))
    tiny = torch.finfo(torch.float32).tiny
    assert not ((heatmaps > 0) & (heatmaps < tiny)).any()
    ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(48.0), indexing="ij")
    exact = torch.exp(
        -((xs - xy[0, :, :1, None]) ** 2 + (ys - xy[0, :, 1:, None]) ** 2) / (2 * 2.0**2)
    )
    torch.testing.assert_close(heatmaps[0], exact, atol=1e-6, rtol=1e-5)
    cut = heatmaps[0] == 0
    assert cut.any() and (exact[cut] < 2.0**-62).all()  # e.g. the first point's far corner


def test_cpu_encode_reuses_its_output_memory_only_once_released():
    codec = HeatmapCodec((256, 192), (64, 48), sigma=2.0, dark=False)
    xy, w = _points(2), torch.ones(2, 133)
    first, _ = codec.encode(xy, w)
    kept = first.clone()
    second, _ = codec.encode(xy + 1.0, w)  # `first` is still held: new memory
    assert second.data_ptr() != first.data_ptr() and torch.equal(first, kept)
    ptr = second.data_ptr()
    del second
    third, _ = codec.encode(xy, w)  # released: written in place
    assert third.data_ptr() == ptr and torch.equal(third, kept)
    view = third[:, :5]
    del third
    fourth, _ = codec.encode(xy + 2.0, w)  # a view still holds it
    assert fourth.data_ptr() != ptr and torch.equal(view, kept[:, :5])
    other, _ = codec.encode(_points(3), torch.ones(3, 133))  # another shape: its own memory
    assert other.shape == (3, 133, 64, 48)
    assert pickle.loads(pickle.dumps(codec))._cpu_buffer is None  # a cache, not pickled


def test_channels_last_targets_hold_the_same_maps_in_the_networks_layout():
    """``channels_last``: the maps a channels-last network's outputs are compared with, laid
    out (B,h,w,K) in memory so the loss needs no copy; values as the standard layout's."""
    codec = HeatmapCodec((128, 96), (64, 48), sigma=2.0, dark=False)
    xy, w = _points(3) * 2.0, torch.ones(3, 133)  # input-crop px
    standard, ws = codec.targets(xy, w)
    kept = standard.clone()
    last, wl = codec.targets(xy, w, channels_last=True)
    assert is_channels_last(last) and not is_channels_last(standard)
    assert standard.is_contiguous() and last.shape == standard.shape
    torch.testing.assert_close(last, kept, rtol=0, atol=0)
    torch.testing.assert_close(wl, ws)
