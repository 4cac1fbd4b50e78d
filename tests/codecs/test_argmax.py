"""The decoders' arg-max: numpy's position on the CPU, exactly what ``Tensor.max(-1)`` returns."""

from __future__ import annotations

import pytest
import torch

from fullbody.codecs.argmax import max_last


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_max_last_is_tensor_max_with_ties_and_nans(dtype):
    g = torch.Generator().manual_seed(0)
    for trial in range(50):
        # few distinct values: many ties, which must resolve to the first maximum as torch's
        v = torch.randint(0, 4, (3, 7, 9), generator=g).to(dtype)
        if trial % 2:
            v[torch.rand(v.shape, generator=g) < 0.1] = float("nan")
        want = v.max(-1)
        values, indices = max_last(v)
        assert torch.equal(indices, want.indices)
        assert values.dtype == dtype
        torch.testing.assert_close(values, want.values, equal_nan=True, rtol=0, atol=0)


def test_max_last_on_strided_empty_and_differentiable_input():
    v = torch.randn(4, 6, 10).transpose(0, 1)  # not contiguous
    assert torch.equal(max_last(v)[1], v.max(-1).indices)
    assert max_last(torch.zeros(0, 5, 8))[0].shape == (0, 5)
    a = torch.randn(2, 3, 5, requires_grad=True)
    b = a.detach().clone().requires_grad_(True)
    max_last(a)[0].sum().backward()
    b.max(-1).values.sum().backward()
    assert torch.equal(a.grad, b.grad)
