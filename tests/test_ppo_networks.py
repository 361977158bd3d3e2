"""The policy network's promises: no BatchNorm, separable convs, trunk sharing, and one function
of the window whichever way it is evaluated (a window batch or one pass over a series)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from modules.errors import ConfigError
from modules.ppo.networks import DepthwiseConv, PolicyValueNet

WINDOW = 16


def _net(**kwargs) -> PolicyValueNet:
    torch.manual_seed(0)
    options = {"width": 8, "depth": 2, "kernel_size": 3, **kwargs}
    return PolicyValueNet(6, WINDOW, (-1.0, 0.0, 1.0), **options)


def test_no_batchnorm_and_convs_are_depthwise_then_pointwise():
    net = _net()
    modules = list(net.modules())
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in modules)
    assert any(isinstance(m, nn.LayerNorm) for m in modules)
    block = net.policy_trunk.blocks[0].body
    kinds = [type(m) for m in block]
    assert kinds.count(DepthwiseConv) == 2 and kinds.count(nn.Linear) == 2
    depthwise = [m for m in modules if isinstance(m, DepthwiseConv)]
    assert all(m.weight.shape[1] == 8 for m in depthwise)  # one filter per channel


def test_depthwise_conv_equals_torch_grouped_conv():
    torch.manual_seed(0)
    conv = DepthwiseConv(5, 3)
    x = torch.randn(4, 20, 5)  # [B, L, C]
    reference = F.conv1d(x.transpose(1, 2), conv.weight.T[:, None, :], conv.bias, groups=5)
    assert torch.allclose(conv(x), reference.transpose(1, 2), atol=1e-6)


def test_outputs_have_the_documented_shapes_and_the_head_sees_the_position():
    net = _net()
    obs = torch.randn(5, 6, WINDOW)
    logits, value, aux = net(obs, torch.zeros(5))
    assert logits.shape == (5, 3) and value.shape == (5,) and aux.shape == (5, 2)
    long_logits = net(obs, torch.ones(5))[0]
    assert not torch.allclose(logits, long_logits)


@pytest.mark.parametrize("shared_trunk", [True, False])
def test_window_batch_and_series_pass_give_the_same_encoding(shared_trunk):
    net = _net(shared_trunk=shared_trunk)
    features = torch.randn(200, 6)
    bars = torch.tensor([15, 16, 90, 199, 40])
    windows = net.encode_windows(features.unfold(0, WINDOW, 1)[bars - WINDOW + 1])
    series = net.encode_series(features)[bars - WINDOW + 1]
    assert torch.allclose(windows, series, atol=1e-5)
    # `encode` picks the route by cost: a few far-apart bars go as windows, many as a series.
    assert torch.allclose(net.encode(features, bars), windows, atol=1e-5)
    many = torch.arange(60, 200)  # a span that does not start at bar 0
    windows = net.encode_windows(features.unfold(0, WINDOW, 1)[many - WINDOW + 1])
    assert torch.allclose(net.encode(features, many), windows, atol=1e-5)
    with pytest.raises(ValueError, match="fewer than window"):
        net.encode(features, torch.tensor([14]))


def test_gradients_through_repeated_bars_repeat_bit_for_bit():
    # Minibatches sample bars with repetition; a gather whose backward accumulates in a
    # thread-dependent order would make two identical runs drift apart.
    net = _net(width=32)
    features = torch.randn(1600, 6)
    bars = torch.randint(WINDOW - 1, 1600, (2048,), generator=torch.Generator().manual_seed(0))

    weights = torch.randn(2048, net.policy_trunk.out_features)  # distinct per-sample gradients

    def gradient() -> torch.Tensor:
        net.zero_grad()
        (net.encode(features, bars) * weights).sum().backward()
        return net.policy_trunk.stem.weight.grad.clone()

    first = gradient()
    assert all(torch.equal(first, gradient()) for _ in range(20))


def test_the_encoding_of_bar_t_sees_exactly_bars_t_minus_w_plus_1_to_t():
    net = _net()
    features = torch.randn(60, 6, requires_grad=True)
    t = 40
    net.encode_series(features)[t - WINDOW + 1].sum().backward()
    touched = features.grad.abs().sum(dim=1) > 0
    assert touched.nonzero().squeeze(1).tolist() == list(range(t - WINDOW + 1, t + 1))


def test_bar_policy_is_the_window_policy_and_refuses_bars_without_a_window():
    net = _net().eval()
    features = torch.randn(50, 6)
    bars, held = torch.tensor([15, 30, 49]), torch.tensor([1.0, 0.0, -1.0])
    act = net.bar_policy(features)
    logits, value, _ = act(bars, held)
    expected = net(features.unfold(0, WINDOW, 1)[bars - WINDOW + 1], held)
    assert torch.allclose(logits, expected[0], atol=1e-5)
    assert torch.allclose(value, expected[1], atol=1e-5)
    assert torch.isnan(act(torch.tensor([14]), torch.zeros(1))[0]).all()
    with pytest.raises(ValueError, match="negative"):
        act(torch.tensor([-1]), torch.zeros(1))


def test_a_receptive_field_wider_than_the_window_is_a_config_error():
    with pytest.raises(ConfigError, match="more than data.window=16"):
        _net(depth=3, kernel_size=4)  # sees 1 + 2 * 3 * 3 = 19 bars


def test_separate_trunks_keep_value_gradients_out_of_the_policy_trunk():
    separate = _net(shared_trunk=False)
    separate(torch.randn(4, 6, WINDOW), torch.zeros(4))[1].sum().backward()
    assert all(p.grad is None or not p.grad.any() for p in separate.policy_trunk.parameters())
    assert any(p.grad is not None for p in separate.value_trunk.parameters())
    shared = _net(shared_trunk=True)
    shared(torch.randn(4, 6, WINDOW), torch.zeros(4))[1].sum().backward()
    assert shared.value_trunk is None
    assert any(p.grad is not None for p in shared.policy_trunk.parameters())
