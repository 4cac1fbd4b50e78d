import numpy as np
import pytest
import torch

from fullbody.codecs import SimCCCodec
from fullbody.codecs.simcc import default_sigma
from fullbody.keypoints import FLIP_INDEX

CODEC = SimCCCodec((256, 192), split_ratio=2.0)


def _points(b: int, k: int = 133, seed: int = 0, margin: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    span = torch.tensor([191.0 - 2 * margin, 255.0 - 2 * margin])
    return margin + torch.rand(b, k, 2, generator=g) * span


def test_targets_have_the_agreed_shapes_and_peaks():
    xy = _points(2)
    tx, ty = CODEC.encode(xy)
    assert tx.shape == (2, 133, 384) and ty.shape == (2, 133, 512)
    assert tx.dtype == torch.float32
    # peak 1 at the point's bin (bin = input px * ratio), Gaussian of sigma bins
    assert CODEC.sigma == (4.9, 5.66)
    i = int(torch.round(xy[0, 0, 0] * 2))
    d = float(i - xy[0, 0, 0] * 2)
    assert tx[0, 0, i].item() == pytest.approx(np.exp(-(d**2) / (2 * 4.9**2)), abs=1e-6)


@pytest.mark.parametrize("ratio", [2.0, 3.0, 1.5])
def test_encode_decode_round_trip_within_a_tenth_of_a_pixel(ratio):
    codec = SimCCCodec((128, 96), split_ratio=ratio)
    # half a pixel from the crop's edges: an edge bin has one neighbour, no sub-bin step
    xy = _points(4, margin=1.0) * torch.tensor([95 / 191, 127 / 255])
    out, score = codec.decode(*codec.encode(xy))
    assert (out - xy).abs().max().item() < 0.1
    assert torch.allclose(score, torch.ones_like(score), atol=0.02)


def test_decode_accepts_numpy_and_logits():
    xy = _points(2, margin=10)
    tx, ty = CODEC.encode(xy)
    a, _ = CODEC.decode(tx.numpy(), ty.numpy())
    # logits: a softmax of them is the label (log of the label plus any constant)
    b, s = CODEC.decode(tx.clamp_min(1e-30).log() + 3.0, ty.clamp_min(1e-30).log() + 3.0)
    assert (a - xy).abs().max() < 0.1 and (b - xy).abs().max() < 0.01
    assert torch.allclose(s, torch.full_like(s, 3.0), atol=0.01)


def test_points_outside_or_unlabelled_get_no_target():
    xy = _points(1, k=4)
    xy[0, 0] = torch.tensor([-40.0, 10.0])  # Gaussian entirely left of the crop
    xy[0, 1] = torch.tensor([float("nan"), 10.0])
    xy[0, 2] = torch.tensor([193.0, 10.0])  # just outside, tail still inside: kept
    w = torch.tensor([[1.0, 1.0, 0.7, 0.0]])
    assert CODEC.encode_weights(xy, w).tolist() == [[0.0, 0.0, pytest.approx(0.7), 0.0]]
    tx, ty = CODEC.encode(xy, w)
    assert tx[0, [0, 1, 3]].abs().sum() == 0 and ty[0, [0, 1, 3]].abs().sum() == 0
    assert tx[0, 2].max() > 0 and torch.isfinite(tx).all()


@pytest.mark.parametrize("ratio", [2.0, 3.0])
def test_flip_test_is_symmetric(ratio):
    """Vectors of a mirrored crop, flipped, are the original crop's vectors (and decode to the
    original points), for the left/right-swapped keypoints."""
    codec = SimCCCodec((256, 192), split_ratio=ratio)
    xy = _points(2, margin=1)
    mirrored = xy[:, torch.as_tensor(np.asarray(FLIP_INDEX))].clone()
    mirrored[..., 0] = 191 - mirrored[..., 0]
    tx, ty = codec.encode(xy)
    fx, fy = codec.flip(*codec.encode(mirrored))
    torch.testing.assert_close(fx[..., :-4], tx[..., :-4], atol=1e-5, rtol=0)
    torch.testing.assert_close(fy, ty)
    back, _ = codec.decode(fx, fy)
    assert (back - xy).abs().max() < 0.1


def test_default_sigma_follows_rtmpose():
    assert default_sigma((384, 288)) == (6.0, 6.93)
    sx, sy = default_sigma((128, 96))
    assert sx == pytest.approx(3.8) and sy == pytest.approx(4.39)
    with pytest.raises(ValueError, match="split_ratio"):
        SimCCCodec((256, 192), split_ratio=0.5)
