"""SSTN and parallel SPPE: frames, identity initialisation, gradients, frozen branch."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fullbody.codecs.heatmap import HeatmapCodec
from fullbody.codecs.spec import TopDownSpec
from fullbody.models.stn import (
    BoundedAffine,
    LocalisationNet,
    ParallelSPPE,
    STNPoseNet,
    affine_grid,
    affine_theta,
    invert_theta,
    recentred_targets,
    stn_statistics,
    transform_points,
    warp,
)

CROP = (256, 192)
HEATMAP = (64, 48)


class PoolNet(nn.Module):
    """A pose net whose K heatmaps are the crop's first channel, area-pooled x4.

    Area pooling of pixels 4i..4i+3 lands on heatmap pixel i under the centre-aligned mapping,
    so a blob at crop point p gives a heatmap blob at ``codec.input_to_heatmap(p)``.
    """

    def __init__(self, k: int = 3) -> None:
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x[:, :1], 4).expand(-1, self.k, -1, -1)


class TinyPoseNet(nn.Module):
    """A trainable stride-4 heatmap network with BatchNorm (buffers to keep frozen)."""

    def __init__(self, k: int = 5) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, stride=2, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, k, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def random_theta(b: int, gen: torch.Generator, size=CROP, spread: float = 2.0) -> torch.Tensor:
    raw = torch.randn(b, 5, generator=gen, dtype=torch.float64) * spread
    return BoundedAffine()(raw, size).double()


def blob(centres: torch.Tensor, size=CROP, sigma: float = 6.0) -> torch.Tensor:
    """(B,2) crop points -> (B,3,H,W) images with a Gaussian blob there."""
    h, w = size
    ys, xs = torch.meshgrid(torch.arange(h).double(), torch.arange(w).double(), indexing="ij")
    d2 = (xs - centres[:, 0, None, None]) ** 2 + (ys - centres[:, 1, None, None]) ** 2
    return torch.exp(-d2 / (2 * sigma**2)).float().unsqueeze(1).expand(-1, 3, -1, -1).clone()


# ---------------------------------------------------------------------------- geometry


def test_zero_parameters_give_the_identity_exactly():
    theta = BoundedAffine()(torch.zeros(2, 5), CROP)
    assert torch.equal(theta, torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(2, 2, 3))


def test_bounds_hold_for_any_raw_parameters():
    affine = BoundedAffine(max_scale=1.5, max_shift=0.25, max_rotation=30.0)
    raw = torch.tensor([[1e4, -1e4, 1e4, 1e4, -1e4], [-1e4, 1e4, -1e4, -1e4, 1e4]])
    theta = affine(raw, CROP).double()
    # Back to pixel terms: the crop centre moves by at most max_shift of the crop size...
    centre = torch.tensor([[[(CROP[1] - 1) / 2, (CROP[0] - 1) / 2]]]).double().expand(2, 1, 2)
    moved = transform_points(centre, theta, CROP) - centre
    assert (moved[..., 0].abs() <= 0.25 * CROP[1] + 1e-6).all()
    assert (moved[..., 1].abs() <= 0.25 * CROP[0] + 1e-6).all()
    # ...and the linear part's singular values stay within [1/1.5, 1.5], orientation kept.
    unit_x = transform_points(centre + torch.tensor([1.0, 0]).double(), theta, CROP) - centre
    unit_y = transform_points(centre + torch.tensor([0, 1.0]).double(), theta, CROP) - centre
    lin = torch.stack([unit_x[:, 0] - moved[:, 0], unit_y[:, 0] - moved[:, 0]], -1)
    sv = torch.linalg.svdvals(lin)
    assert (sv >= 1 / 1.5 - 1e-6).all() and (sv <= 1.5 + 1e-6).all()
    assert (torch.linalg.det(lin) > 0).all()
    angle = torch.atan2(lin[:, 1, 0], lin[:, 0, 0])
    assert (angle.abs() <= math.radians(30) + 1e-6).all()
    with pytest.raises(ValueError, match="max_scale"):
        BoundedAffine(max_scale=0.9)
    with pytest.raises(ValueError, match="max_shift"):
        BoundedAffine(max_shift=0.7)


@pytest.mark.parametrize("size", [CROP, HEATMAP])
def test_points_forward_then_back_within_1e4_px(size):
    gen = torch.Generator().manual_seed(0)
    theta = random_theta(64, gen, CROP).float()
    h, w = size
    xy = torch.rand(64, 133, 2, generator=gen) * torch.tensor([1.5 * w, 1.5 * h]) - 0.25 * w
    there = transform_points(xy, theta, size)
    back = transform_points(there, invert_theta(theta), size)
    assert (back - xy).abs().max() < 1e-4
    assert (there - xy).abs().max() > 1.0  # the transforms are not trivial


def test_crop_and_heatmap_frames_share_one_theta():
    """Mapping a crop point, then converting to heatmap px == converting, then mapping."""
    gen = torch.Generator().manual_seed(1)
    theta = random_theta(16, gen)
    codec = HeatmapCodec(CROP, HEATMAP, 2.0, dark=False)
    xy = torch.rand(16, 20, 2, generator=gen, dtype=torch.float64) * 200
    a = codec.input_to_heatmap(transform_points(xy, theta, CROP))
    b = transform_points(codec.input_to_heatmap(xy), theta, HEATMAP)
    assert torch.allclose(a, b, atol=1e-9)


def test_affine_grid_equals_torch_affine_grid():
    gen = torch.Generator().manual_seed(6)
    theta = random_theta(8, gen).float()
    for h, w in (CROP, HEATMAP, (7, 5)):
        ours = affine_grid(theta, h, w)
        ref = F.affine_grid(theta, [8, 1, h, w], align_corners=False)
        assert torch.allclose(ours, ref, atol=1e-6)


@pytest.mark.parametrize("size", [CROP, HEATMAP])
def test_warp_samples_where_transform_points_says(size):
    """Bilinear sampling of a linear image is exact, so warp(I)(p') must equal I(theta p')."""
    gen = torch.Generator().manual_seed(2)
    theta = random_theta(4, gen, spread=0.7)
    h, w = size
    ys, xs = torch.meshgrid(torch.arange(h).double(), torch.arange(w).double(), indexing="ij")
    image = (0.3 * xs - 0.7 * ys + 5.0).expand(4, 1, h, w)
    out = warp(image, theta)[:, 0]
    grid = torch.stack([xs, ys], -1).reshape(1, -1, 2).expand(4, -1, -1)
    src = transform_points(grid, theta, size)
    inside = (
        (src[..., 0] >= 0) & (src[..., 0] <= w - 1) & (src[..., 1] >= 0) & (src[..., 1] <= h - 1)
    )
    expected = 0.3 * src[..., 0] - 0.7 * src[..., 1] + 5.0
    got = out.reshape(4, -1)
    assert inside.float().mean() > 0.3
    assert (got - expected)[inside].abs().max() < 1e-9


# ---------------------------------------------------------------------------- the wrapper


def test_identity_initialisation_leaves_predictions_unchanged():
    torch.manual_seed(0)
    net = TinyPoseNet().eval()
    stn = STNPoseNet(net).eval()
    x = torch.randn(3, 3, *CROP)
    with torch.no_grad():
        plain, wrapped = net(x), stn(x)
    assert wrapped.shape == plain.shape == (3, 5, *HEATMAP)
    assert (wrapped - plain).abs().max() < 1e-5
    out = stn.forward_detailed(x)
    assert (out.crop - x).abs().max() < 1e-4  # float32 grid rounding, values ~N(0, 1)


def test_heatmaps_come_back_in_the_original_frame():
    """A blob at crop point p, seen through a non-trivial transform, decodes back at p."""
    codec = HeatmapCodec(CROP, HEATMAP, 2.0, dark=False)
    stn = STNPoseNet(PoolNet()).eval()
    with torch.no_grad():
        stn.localisation.out.bias.copy_(torch.tensor([0.3, -0.2, 0.4, 0.2, -0.3]))
    centres = torch.tensor([[96.0, 128.0], [80.3, 141.7], [110.6, 101.2]])
    x = blob(centres)
    with torch.no_grad():
        out = stn.forward_detailed(x)
    # The SPPE really saw a different crop: the blob moved in the transformed frame...
    seen, _ = codec.decode(out.heatmaps_transformed, dark=True)
    expected = codec.input_to_heatmap(centres)
    assert (seen[:, 0] - expected).norm(dim=-1).min() > 2.0
    # ...and the de-transformed heatmaps put it back where it is in the original crop.
    xy, _ = codec.decode(out.heatmaps, dark=True)
    assert (xy[:, 0] - expected).norm(dim=-1).max() < 0.1
    mapped = transform_points(expected.unsqueeze(1), invert_theta(out.theta), HEATMAP)[:, 0]
    assert (seen[:, 0] - mapped).norm(dim=-1).max() < 0.1


def test_de_transformed_gaussians_decode_to_within_005_heatmap_px():
    """The cost of resampling heatmaps: codec Gaussians drawn in the transformed frame, warped
    back, decode (DARK) to the original points within 0.05 heatmap px (measured max 0.025)."""
    codec = HeatmapCodec(CROP, HEATMAP, 2.0, dark=False)
    gen = torch.Generator().manual_seed(4)
    theta = random_theta(128, gen, spread=1.0).float()
    xy = torch.rand(128, 1, 2, generator=gen) * torch.tensor([28.0, 44.0]) + 10.0
    seen = transform_points(xy, invert_theta(theta), HEATMAP)
    heatmaps, _ = codec.encode(seen, torch.ones(128, 1))
    back, _ = codec.decode(warp(heatmaps, invert_theta(theta)), dark=True)
    # Gaussians at least 2 sigma inside the transformed frame (DARK's own border bias aside).
    inside = ((seen > 4) & (seen < torch.tensor([43.0, 59.0]))).all(-1)[:, 0]
    assert inside.sum() > 64
    assert (back - xy)[inside].norm(dim=-1).max() < 0.05


def test_flip_test_commutes_with_the_wrapper_at_identity():
    torch.manual_seed(0)
    net = TinyPoseNet().eval()
    stn = STNPoseNet(net).eval()
    x = torch.randn(2, 3, *CROP)
    with torch.no_grad():
        assert torch.allclose(stn(x.flip(-1)), net(x.flip(-1)), atol=1e-5)


def test_gradients_reach_the_localisation_network():
    torch.manual_seed(0)
    stn = STNPoseNet(TinyPoseNet())
    x = torch.randn(2, 3, 64, 48)
    target = torch.rand(2, 5, 16, 12)
    F.mse_loss(stn(x), target).backward()
    last = stn.localisation.out
    assert last.weight.grad is not None and last.weight.grad.abs().sum() > 0
    assert last.bias.grad.abs().sum() > 0
    # Once the last layer is non-zero, the gradient reaches the first convolution too.
    with torch.no_grad():
        for p in stn.localisation.parameters():
            if p.grad is not None:
                p -= p.grad
    stn.zero_grad()
    F.mse_loss(stn(x), target).backward()
    first = stn.localisation.features[0].weight.grad
    assert first is not None and first.abs().sum() > 0


def test_localisation_net_sees_where_not_just_what():
    """Flattening (not global pooling) keeps position: a shifted blob changes its features."""
    torch.manual_seed(0)
    loc = LocalisationNet().eval()
    x = blob(torch.tensor([[60.0, 80.0], [130.0, 170.0]]))
    with torch.no_grad():
        f = loc.fc(loc.pool(loc.features(F.adaptive_avg_pool2d(x, loc.input_size))))
    assert (f[0] - f[1]).abs().max() > 1e-3


# ---------------------------------------------------------------------------- parallel SPPE


def test_recentred_targets():
    b, k = 2, 6
    gen = torch.Generator().manual_seed(3)
    xy = torch.rand(b, k, 2, generator=gen) * 30 + 5
    weight = torch.ones(b, k)
    weight[0, 0] = 0
    xy[0, 0] = torch.tensor([1000.0, -1000.0])  # unlabelled: must not move the centre
    identity = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(b, 2, 3)
    out = recentred_targets(xy, weight, identity, HEATMAP)
    lab = out[1]
    centre = torch.tensor([(HEATMAP[1] - 1) / 2, (HEATMAP[0] - 1) / 2])
    assert torch.allclose(0.5 * (lab.amin(0) + lab.amax(0)), centre, atol=1e-5)
    lab0 = out[0, 1:]
    assert torch.allclose(0.5 * (lab0.amin(0) + lab0.amax(0)), centre, atol=1e-5)
    assert torch.allclose(out - xy, (out - xy)[:, 1:2].expand(b, k, 2), atol=1e-4)
    # A pure translation of the crop is cancelled by re-centring; mapping alone undoes it.
    shift = affine_theta(torch.ones(b, 2), torch.zeros(b), torch.full((b, 2), 0.1), CROP)
    assert torch.allclose(recentred_targets(xy, weight, shift, HEATMAP), out, atol=1e-4)
    mapped = recentred_targets(xy, weight, shift, HEATMAP, recentre=False)
    assert torch.allclose(mapped, xy - torch.tensor([0.1 * HEATMAP[1], 0.1 * HEATMAP[0]]))
    # No labelled point: left as mapped.
    none = recentred_targets(xy, torch.zeros(b, k), identity, HEATMAP)
    assert torch.equal(none, xy)


def _parallel_loss(branch, stn, x, target_xy, target_weight):
    out = stn.forward_detailed(x)
    pred, target, weight = branch(stn.pose_net, out, target_xy, target_weight)
    return ((pred - target) ** 2).mean((-2, -1)).mul(weight).mean()


def test_parallel_branch_with_shared_weights_stays_frozen():
    torch.manual_seed(0)
    stn = STNPoseNet(TinyPoseNet()).train()
    branch = ParallelSPPE(HeatmapCodec(CROP, HEATMAP, 2.0, dark=False))
    x = torch.randn(4, 3, *CROP)
    target_xy = torch.rand(4, 5, 2) * 40
    buffers = {n: b.clone() for n, b in stn.pose_net.named_buffers()}
    _parallel_loss(branch, stn, x, target_xy, torch.ones(4, 5)).backward()
    assert stn.localisation.out.weight.grad.abs().sum() > 0
    # The only graph through the pose network is the main one's; this loss never reaches it.
    assert all(p.grad is None for p in stn.pose_net.parameters())
    # The main forward updated the BN statistics once; the parallel branch did not again.
    stn2 = STNPoseNet(TinyPoseNet()).train()
    stn2.load_state_dict(stn.state_dict())
    for n, b in stn2.pose_net.named_buffers():
        b.copy_(buffers[n])
    stn2.forward_detailed(x)
    for (n, b), (_, b2) in zip(stn.pose_net.named_buffers(), stn2.pose_net.named_buffers()):
        assert torch.equal(b, b2), n
    assert list(branch.state_dict()) == []


def test_parallel_branch_with_a_reference_network_stays_frozen():
    torch.manual_seed(0)
    stn = STNPoseNet(TinyPoseNet())
    reference = TinyPoseNet()
    before = {n: t.clone() for n, t in reference.state_dict().items()}
    branch = ParallelSPPE(HeatmapCodec((64, 48), (16, 12), 2.0, dark=False), reference=reference)
    holder = nn.ModuleDict({"stn": stn, "branch": branch}).train()
    assert not reference.training and not any(p.requires_grad for p in reference.parameters())
    assert all(not n.startswith("branch") for n in holder.state_dict())
    assert all(p is not q for p in holder.parameters() for q in reference.parameters())
    opt = torch.optim.Adam(holder.parameters(), lr=1e-2)
    x = torch.randn(4, 3, 64, 48)
    target_xy = torch.rand(4, 5, 2) * 12
    for _ in range(3):
        opt.zero_grad()
        _parallel_loss(branch, stn, x, target_xy, torch.ones(4, 5)).backward()
        opt.step()
    after = reference.state_dict()
    assert all(torch.equal(before[n], after[n]) for n in before)
    assert stn.localisation.out.weight.abs().sum() > 0  # the transformer did learn


def test_parallel_loss_teaches_the_transformer_to_centre_people():
    """With a frozen SPPE that sees exactly what is there, its loss against the re-centred
    labels moves an off-centre person to the middle of the transformed crop."""
    torch.manual_seed(0)
    size, hm = (64, 48), (16, 12)
    codec = HeatmapCodec(size, hm, sigma=2.0, dark=False)
    stn = STNPoseNet(PoolNet(k=1), loc_input_size=(32, 24), loc_channels=(8, 16), loc_hidden=32)
    branch = ParallelSPPE(codec, reference=PoolNet(k=1))
    gen = torch.Generator().manual_seed(0)
    # People (one point each) 6-9 px off the centre in random directions.
    angle = torch.rand(16, generator=gen) * 2 * math.pi
    radius = 6 + 3 * torch.rand(16, generator=gen)
    centre = torch.tensor([(size[1] - 1) / 2, (size[0] - 1) / 2])
    where = centre + radius[:, None] * torch.stack([angle.cos(), angle.sin()], -1)
    x = blob(where, size, sigma=8.0)
    target_xy = where.unsqueeze(1)
    weight = torch.ones(16, 1)

    def offset() -> float:
        with torch.no_grad():
            theta = stn.forward_detailed(x).theta
        seen = transform_points(where.unsqueeze(1), invert_theta(theta), size)[:, 0]
        return (seen - centre).norm(dim=-1).mean().item()

    start = offset()
    opt = torch.optim.Adam(stn.localisation.parameters(), lr=3e-3)
    for _ in range(25):
        opt.zero_grad()
        _parallel_loss(branch, stn, x, target_xy, weight).backward()
        opt.step()
    assert offset() < 0.25 * start  # measured: 7.4 px -> ~0.9 px after 25 steps


def test_stn_statistics_read_the_transform_back():
    b = 3
    scale = torch.tensor([[1.2, 1.2], [0.8, 0.8], [1.0, 1.0]])
    angle = torch.deg2rad(torch.tensor([10.0, -20.0, 0.0]))
    shift = torch.tensor([[0.1, 0.0], [0.0, -0.2], [0.03, 0.04]])
    stats = stn_statistics(affine_theta(scale, angle, shift, CROP), CROP)
    assert stats["scale"] == pytest.approx((1.2 + 0.8 + 1.0) / b, abs=1e-5)
    assert stats["rotation"] == pytest.approx((10 + 20 + 0) / b, abs=1e-4)
    assert stats["shift"] == pytest.approx((0.1 + 0.2 + 0.05) / b, abs=1e-5)


def test_invert_theta_composes_to_the_identity():
    gen = torch.Generator().manual_seed(5)
    theta = random_theta(32, gen)
    inv = invert_theta(theta)
    full = torch.cat([theta, torch.tensor([0, 0, 1.0]).double().expand(32, 1, 3)], 1)
    full_inv = torch.cat([inv, torch.tensor([0, 0, 1.0]).double().expand(32, 1, 3)], 1)
    assert torch.allclose(full @ full_inv, torch.eye(3).double().expand(32, 3, 3), atol=1e-12)


def test_stn_pose_net_exports_to_onnx_and_matches(tmp_path):
    """The wrapped network is still one graph (affine grid, grid sample, closed-form inverse)."""
    from fullbody.inference.export import export_onnx, onnx_parity, random_crops

    torch.manual_seed(0)
    stn = STNPoseNet(TinyPoseNet()).eval()
    with torch.no_grad():  # a non-trivial transform, so that the resampling matters
        stn.localisation.out.bias.copy_(torch.tensor([0.3, -0.2, 0.4, 0.2, -0.3]))
    path = export_onnx(stn, tmp_path / "stn.onnx", TopDownSpec.standard((64, 48), "heatmap"))
    parity = onnx_parity(stn, path, random_crops(4, (64, 48)), batch_sizes=(1, 4))
    assert parity["max_abs_diff"] < 1e-4 * max(parity["max_output"], 1.0)


def test_transform_stays_in_float32_under_bfloat16_autocast():
    torch.manual_seed(0)
    stn = STNPoseNet(TinyPoseNet()).eval()
    with torch.no_grad():
        stn.localisation.out.bias.copy_(torch.tensor([0.3, -0.2, 0.4, 0.2, -0.3]))
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        ref = stn.forward_detailed(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = stn.forward_detailed(x)
    assert low.theta.dtype == torch.float32 and low.crop.dtype == torch.float32
    assert (low.theta - ref.theta).abs().max() < 1e-6
    assert (low.crop - ref.crop).abs().max() < 1e-5
    assert low.heatmaps.dtype == torch.float32
